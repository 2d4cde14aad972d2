import type { Middleware, ToolInvocation } from '../runtime/middleware.js';
import { commandPrograms, hasOutputRedirection } from './shell-words.js';

const READ_ONLY_PROGRAMS = new Set([
  'ls',
  'cat',
  'head',
  'tail',
  'grep',
  'egrep',
  'fgrep',
  'rg',
  'find',
  'wc',
  'file',
  'stat',
  'tree',
  'less',
  'more',
  'du',
  'df',
  'which',
  'whereis',
  'printenv',
  'id',
  'whoami',
  'uname',
  'date',
  'diff',
  'cmp',
  'md5sum',
  'sha256sum',
  'od',
  'xxd',
  'hexdump',
  'realpath',
  'readlink',
  'basename',
  'dirname',
  'sort',
  'uniq',
  'cut',
  'column',
  'nl',
]);

/** Whether a call only looks at things: reading or listing files, or a shell command made of read-only programs. */
export function isReadOnlyCall(call: ToolInvocation): boolean {
  if (call.name === 'read_file' || call.name === 'list_directory') return true;
  if (call.command === undefined) return false;
  if (hasOutputRedirection(call.command) || /\bsed\s+(-[a-zA-Z]*i|--in-place)/.test(call.command)) return false;
  const programs = commandPrograms(call.command);
  return (
    programs.every((program) => READ_ONLY_PROGRAMS.has(program)) || /^\s*(ls|pwd|echo)\b[^;&|>]*$/.test(call.command)
  );
}

/**
 * After `maxReadOnlyActions` read-only actions in a row (no file written, no command that does anything else), tells
 * the agent to start implementing; then counts afresh.
 */
export function explorationNudge(parameters: { maxReadOnlyActions: number }): Middleware {
  let streak = 0;
  return {
    name: 'exploration-nudge',
    async afterToolCall(_session, call, outcome) {
      if (!isReadOnlyCall(call)) {
        streak = 0;
        return undefined;
      }
      streak += 1;
      if (streak < parameters.maxReadOnlyActions) return undefined;
      streak = 0;
      return {
        ...outcome,
        notes: [
          ...outcome.notes,
          `You have taken ${parameters.maxReadOnlyActions} read-only actions in a row without changing anything. You know enough to start: write the files the task asks for now, then check them.`,
        ],
      };
    },
  };
}
