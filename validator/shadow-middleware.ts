import { commandPrograms, instructionPaths, type Middleware } from '../harness/index.js';
import type { LoggedCall, LoggedRun } from './logged-run.js';

/**
 * Stand-ins for the middleware that need the live environment (a shell to probe, files on disk, a shell that keeps
 * state). Shadow replay cannot run anything, so each decides from the logged evidence of the run it replays, and says
 * how in `SHADOW_APPROXIMATIONS`. Each is a `Middleware`, so shadow replay drives it through the same hooks as the
 * real ones; `session.history.length` is the index of the logged call being replayed.
 */

/** How each simulated middleware decides, for reports and the README. */
export const SHADOW_APPROXIMATIONS: Readonly<Record<string, string>> = {
  'dependency-precheck':
    'a program counts as missing before a call when the next logged evidence about it says so: a later (or this) ' +
    'output reports "<program>: command not found" / "not found" before any call ran it successfully; without ' +
    'evidence after the call, the latest evidence before it decides; with none, it counts as installed',
  'artifact-check':
    'at the finish (a logged finish call, or the end of a run that did not stop on a budget or an error), a required ' +
    'file (declared by the task, or named in the instruction in backticks) counts as missing when a failed verifier ' +
    'test reports it missing, or when no logged call wrote or named it',
  'persistent-shell':
    'fires at a failed call that depended on shell state an earlier, successful call set on its own: a variable ' +
    'exported there and reported unset here, a `cd` that ended an earlier call followed by a "No such file" failure ' +
    'of a command without its own `cd`, or an environment activated there followed by a missing program or module',
  'rules (check actions)':
    'a check command cannot run: on a tool event its output is shown as "(not run in shadow replay)"; on finish it ' +
    'counts as failing exactly when the verifier failed the run',
  trajectory:
    'after the first intervention the live run would have diverged; later interventions are counted on the logged ' +
    'trajectory, where a blocked call still ran and returned its logged output',
};

/** Output text in which bash or sh reports a program it could not find; the first group is the program. */
const NOT_FOUND = /(?:^|[\s:])([A-Za-z0-9_][A-Za-z0-9_.+-]*): (?:command not found|not found)\b/g;

/** Programs a call's output reports as not installed. */
export function programsReportedMissing(call: LoggedCall): string[] {
  const text = `${call.output}\n${call.error ?? ''}`;
  const names = [...text.matchAll(NOT_FOUND)].map((match) => match[1]!);
  return [...new Set(names)].filter((name) => !/^(bash|sh|line|zsh|dash)$/.test(name) && !/^\d+$/.test(name));
}

/** What call `index` of `calls` tells about `program`: missing, present (ran fine), or nothing. */
function evidenceAbout(call: LoggedCall, program: string): 'missing' | 'present' | undefined {
  if (programsReportedMissing(call).includes(program)) return 'missing';
  if (call.command !== undefined && call.exitCode === 0 && commandPrograms(call.command).includes(program))
    return 'present';
  return undefined;
}

/** Whether `program` was missing when call `index` was about to run, judged from the logged calls. */
export function isProgramMissingAt(calls: readonly LoggedCall[], index: number, program: string): boolean {
  for (let position = index; position < calls.length; position += 1) {
    const evidence = evidenceAbout(calls[position]!, program);
    if (evidence !== undefined) return evidence === 'missing';
  }
  for (let position = index - 1; position >= 0; position -= 1) {
    const evidence = evidenceAbout(calls[position]!, program);
    if (evidence !== undefined) return evidence === 'missing';
  }
  return false;
}

/** The calls of a run in order, as shadow replay feeds them. */
export function flattenCalls(run: LoggedRun): LoggedCall[] {
  return run.turns.flatMap((turn) => turn.calls);
}

/** `dependency-precheck` from the logged evidence: same message and caching as the live one. */
export function shadowDependencyPrecheck(run: LoggedRun, parameters: { action: 'warn' | 'block' }): Middleware {
  const calls = flattenCalls(run);
  const present = new Set<string>();
  return {
    name: 'dependency-precheck',
    async beforeToolCall(session, call) {
      if (call.command === undefined) return undefined;
      const index = session.history.length;
      const programs = commandPrograms(call.command).filter((program) => !present.has(program));
      const missing = programs.filter((program) => isProgramMissingAt(calls, index, program));
      for (const program of programs) if (!missing.includes(program)) present.add(program);
      if (missing.length === 0) return undefined;
      const message = `${missing.length > 1 ? 'these programs are' : 'this program is'} not installed: ${missing.join(', ')}. There is no network to install ${missing.length > 1 ? 'them' : 'it'}; use an installed alternative (check with \`command -v NAME\`).`;
      return parameters.action === 'block' ? { block: message } : { warn: message };
    },
  };
}

/** A failed verifier test that reports a file missing (the same wording the detectors look for). */
const MISSING_FILE_TEST =
  /exist|missing|not found|no such file|FileNotFound|not created|was not (written|produced|generated)/i;

/** Arguments of file tools that name the file they write. */
const PATH_ARGUMENTS = ['path', 'file_path', 'filename', 'file', 'target'];

/** Whether any logged call wrote or named `path` (a file tool's path argument, or the path in a command). */
export function isPathTouched(calls: readonly LoggedCall[], path: string): boolean {
  const bare = path.replace(/\/+$/, '');
  return calls.some((call) => {
    for (const key of PATH_ARGUMENTS) {
      const value = call.arguments[key];
      if (typeof value === 'string' && (value === bare || value.endsWith(`/${bare}`) || value.startsWith(`${bare}/`)))
        return true;
    }
    return call.command?.includes(bare) === true;
  });
}

/** Required files of a run: those its task declares and, when asked, those its instruction names in backticks. */
export function requiredFiles(
  run: LoggedRun,
  options: { fromInstruction: boolean; declared: readonly string[]; agentPath: string },
): string[] {
  const required = new Set(options.declared);
  if (options.fromInstruction && run.instruction !== undefined)
    for (const path of instructionPaths(run.instruction, options.agentPath)) required.add(path);
  return [...required];
}

/** The required files the logged evidence says were missing at the end of the run. */
export function missingFilesAtFinish(run: LoggedRun, required: readonly string[]): string[] {
  const calls = flattenCalls(run);
  const reports = run.tests
    .filter((test) => test.status === 'failed')
    .map((test) => `${test.name} ${test.message ?? ''}`)
    .filter((text) => MISSING_FILE_TEST.test(text));
  return required.filter((path) => {
    const bare = path.replace(/\/+$/, '');
    const name = bare.split('/').at(-1) ?? bare;
    const reported = reports.some((text) => text.includes(bare) || text.includes(name));
    return reported || !isPathTouched(calls, path);
  });
}

/** `artifact-check` from the logged evidence: refuses the finish naming the files, with the live one's wording. */
export function shadowArtifactCheck(
  run: LoggedRun,
  parameters: { fromInstruction: boolean },
  options: { declared: readonly string[]; agentPath: string },
): Middleware {
  return {
    name: 'artifact-check',
    async beforeFinish() {
      const missing = missingFilesAtFinish(
        run,
        requiredFiles(run, { fromInstruction: parameters.fromInstruction, ...options }),
      );
      if (missing.length === 0) return undefined;
      return {
        refuse: `required file${missing.length > 1 ? 's are' : ' is'} missing: ${missing.join(', ')}. Create ${missing.length > 1 ? 'them' : 'it'} in the workspace, then call finish again.`,
      };
    },
  };
}

/** Shell state a call set as its last action, which only a persistent shell would carry to the next call. */
interface StateSetting {
  readonly index: number;
  readonly step: number;
  readonly kind: 'variable' | 'directory' | 'environment';
  readonly name: string;
}

function lastSegment(command: string): string {
  const segments = command
    .trim()
    .split(/\n|;|&&|\|\|/)
    .map((segment) => segment.trim())
    .filter(Boolean);
  return segments.at(-1) ?? '';
}

function stateSettings(call: LoggedCall, index: number): StateSetting[] {
  if (call.command === undefined || call.exitCode !== 0) return [];
  const settings: StateSetting[] = [];
  for (const match of call.command.matchAll(/\bexport\s+([A-Za-z_][A-Za-z0-9_]*)=/g))
    settings.push({ index, step: call.step, kind: 'variable', name: match[1]! });
  const last = lastSegment(call.command);
  const directory = /^cd\s+([^\s;&|]+)$/.exec(last);
  if (directory && !['~', '-', '/'].includes(directory[1]!))
    settings.push({ index, step: call.step, kind: 'directory', name: directory[1]! });
  if (/^(source|\.)\s+\S*activate\b|^conda\s+activate\b|^(source|\.)\s+\S+$/.test(last))
    settings.push({ index, step: call.step, kind: 'environment', name: last });
  return settings;
}

function isFailedCall(call: LoggedCall): boolean {
  return call.error !== undefined || (call.exitCode !== undefined && call.exitCode !== 0);
}

/** Whether the failed `call` depended on `setting`, judging by what it printed and what it ran. */
function dependsOn(call: LoggedCall, setting: StateSetting): boolean {
  const command = call.command ?? '';
  const text = `${call.output}\n${call.error ?? ''}`;
  switch (setting.kind) {
    case 'variable':
      return (
        !command.includes(`${setting.name}=`) &&
        new RegExp(
          `\\b${setting.name}\\b[^\\n]{0,20}(unbound variable|is not set|parameter null or not set|must be set|is empty|is undefined|not defined)`,
        ).test(text)
      );
    case 'directory':
      return !/(^|[\s;&|(])cd\s/.test(command) && /No such file or directory|can't open file|can't cd/.test(text);
    case 'environment':
      return (
        !/\b(source|activate)\b|(^|[\s;&|])\.\s/.test(command) &&
        (programsReportedMissing(call).length > 0 || /ModuleNotFoundError|No module named/.test(text))
      );
  }
}

/**
 * `persistent-shell` from the logged evidence: it changes no message, but a call that failed because a fresh shell
 * lost the state an earlier call set would not have failed; that call is where it intervenes.
 */
export function shadowPersistentShell(run: LoggedRun): Middleware {
  const calls = flattenCalls(run);
  return {
    name: 'persistent-shell',
    async afterToolCall(session, _call, outcome) {
      const index = session.history.length;
      const logged = calls[index];
      if (logged === undefined || !isFailedCall(logged)) return undefined;
      const settings = calls.slice(0, index).flatMap(stateSettings);
      const lost = settings.reverse().find((setting) => dependsOn(logged, setting));
      if (!lost) return undefined;
      const what = lost.kind === 'directory' ? `the working directory ${lost.name}` : `${lost.kind} ${lost.name}`;
      return {
        ...outcome,
        notes: [
          ...outcome.notes,
          `a persistent shell would have kept ${what} (set at step ${lost.step}); this call failed without it`,
        ],
      };
    },
  };
}
