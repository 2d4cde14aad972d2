import { isFailedOutcome, type Middleware } from '../runtime/middleware.js';

interface Hint {
  readonly kind: string;
  readonly matches: (text: string, timedOut: boolean) => boolean;
  readonly hint: (persistentShell: boolean) => string | undefined;
}

const HINTS: readonly Hint[] = [
  {
    kind: 'timeout',
    matches: (_text, timedOut) => timedOut,
    hint: () =>
      'The command ran out of time and was stopped. Avoid interactive programs, split the work into smaller steps, or make the command faster.',
  },
  {
    kind: 'missing-program',
    matches: (text) => /command not found|: not found\b/i.test(text),
    hint: () =>
      'A program is not installed and there is no network. Check with `command -v NAME` and use an installed alternative (python3 can do most data work).',
  },
  {
    kind: 'missing-module',
    matches: (text) => /ModuleNotFoundError|No module named/.test(text),
    hint: () => 'That Python module is not installed and cannot be downloaded; use the standard library instead.',
  },
  {
    kind: 'missing-path',
    matches: (text) => /No such file or directory|no such file/i.test(text),
    hint: (persistentShell) =>
      persistentShell
        ? 'A path does not exist. Check where you are with `pwd` and what exists with `ls`.'
        : 'A path does not exist. Each shell call starts afresh in the workspace: a `cd`, `export` or `source` from an earlier call is gone. Chain them with && in one command, or use paths relative to the workspace.',
  },
  {
    kind: 'permission',
    matches: (text) => /Permission denied/i.test(text),
    hint: () =>
      'Check the file modes with `ls -l`; make a script executable with `chmod +x`, or run it with bash or python3.',
  },
  {
    kind: 'syntax',
    matches: (text) => /syntax error|SyntaxError|unexpected EOF/i.test(text),
    hint: () => 'Check quoting and brackets. For anything long, write a script file with write_file and run it.',
  },
  {
    kind: 'edit-mismatch',
    matches: (text) => /old_text was not found|old_text occurs/.test(text),
    hint: () => 'Read the file again and copy the text to replace exactly, including spaces and line breaks.',
  },
  {
    kind: 'arguments',
    matches: (text) => /not a valid JSON object|needs a (non-empty )?string argument/.test(text),
    hint: () => 'Send tool arguments as one valid JSON object with the fields the tool describes.',
  },
];

/** At most this many hints of one kind per run: a hint read three times has been read. */
const MAX_HINTS_PER_KIND = 3;

/** After a failed tool call, adds a short hint on how to recover when the output shows a known kind of failure. */
export function errorRecoveryHints(): Middleware {
  const shown = new Map<string, number>();
  return {
    name: 'error-recovery-hints',
    async afterToolCall(session, _call, outcome) {
      if (!isFailedOutcome(outcome)) return undefined;
      const persistent = session.spec.middleware.some((entry) => entry.name === 'persistent-shell');
      const text = `${outcome.output}\n${outcome.error ?? ''}`;
      const hint = HINTS.find((candidate) => candidate.matches(text, outcome.timedOut === true));
      if (!hint) return undefined;
      const count = shown.get(hint.kind) ?? 0;
      const message = hint.hint(persistent);
      if (count >= MAX_HINTS_PER_KIND || message === undefined) return undefined;
      shown.set(hint.kind, count + 1);
      return { ...outcome, notes: [...outcome.notes, `Hint: ${message}`] };
    },
  };
}
