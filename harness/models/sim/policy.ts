import { SIM_MAX_TURNS, type SimProfile } from './profiles.js';
import type { Random } from './random.js';
import {
  type InstructionKind,
  type MessageSignals,
  pathsIn,
  readInstructions,
  readMessageSignals,
  readToolResult,
  type ToolResultReading,
} from './signals.js';
import { type SolutionStep, stepMentionsPath } from './solution-steps.js';

/**
 * The simulated model's decisions, as a pure state machine: given what the model was shown since its last turn, the
 * next action. It follows the task's reference solution step by step and injects its profile's failure mechanisms;
 * its reactions to what it is shown are the fixed rules below, with the profile's probabilities. All randomness comes
 * from the one `Random` it is given, drawn in a fixed order, so equal seeds and equal observations give equal actions.
 */

export type ActionPurpose = 'explore' | 'step' | 'check-program' | 'verify' | 'finish';

export type SimAction =
  | {
      readonly kind: 'shell';
      readonly command: string;
      readonly purpose: ActionPurpose;
      /** The solution step this command carries out. */
      readonly stepIndex?: number;
      /** A program the command relies on that the reference solution does not use. */
      readonly program?: string;
      /** The command re-does earlier `cd`/`export` lines so it stands alone. */
      readonly selfContained?: boolean;
    }
  | { readonly kind: 'read_file'; readonly path: string; readonly purpose: 'explore' }
  | { readonly kind: 'list_directory'; readonly path: string; readonly purpose: 'explore' }
  | { readonly kind: 'finish'; readonly summary: string; readonly purpose: 'finish' };

/** What the model was shown since its previous turn. */
export interface SimObservation {
  /** Instructions read on the first turn: system prompt, tool descriptions, the task's instruction. */
  readonly instructions?: string;
  /** The result of the model's previous call, when the conversation holds one. */
  readonly lastResult?: string;
  /** Every other message since the previous turn (injected user messages, other tool results). */
  readonly otherMessages: readonly string[];
}

export interface SimTask {
  readonly instruction: string;
  /** Files the task requires: used to find the solution steps that write them, as a reader of the solution would. */
  readonly requiredArtifacts: readonly string[];
}

/** Programs the model may reach for that the solution does not use, by what the step works on. */
const MISSING_PROGRAM_HABITS: readonly { readonly when: RegExp; readonly program: string; readonly usage: string }[] = [
  { when: /json/i, program: 'jsonlint', usage: 'jsonlint -q FILE' },
  { when: /csv/i, program: 'mlr', usage: 'mlr --icsv --opprint head -n 3 FILE' },
  { when: /\bgrep\b/, program: 'rg', usage: 'rg --files > /dev/null' },
  { when: /\bfind\b/, program: 'fd', usage: 'fd --type f > /dev/null' },
  { when: /\bawk\b/, program: 'gawk', usage: 'gawk --version > /dev/null' },
  { when: /\bxml\b/i, program: 'xmllint', usage: 'xmllint --noout FILE' },
  { when: /[\s\S]/, program: 'rg', usage: 'rg --files > /dev/null' },
];

export class SimPolicy {
  private turn = 0;
  private workdir = '/workspace';
  private selfContained: boolean;
  private verifyBeforeFinish: boolean;
  private checkDependencies: boolean;
  private readonly followed = new Set<InstructionKind>();
  private explorationLeft: number;
  private deferral: { pending: boolean; callsLeft: number };
  private readonly writerSteps: readonly number[];
  private readonly knownArtifacts: readonly string[];
  private readonly plannedPrograms = new Map<number, string>();
  private readonly missingPrograms = new Set<string>();
  private readonly presentPrograms = new Set<string>();
  private readonly checkedPrograms = new Set<string>();
  private cursor = 0;
  private readonly issuedSteps = new Set<number>();
  private queue: SimAction[] = [];
  private loop: { action: SimAction; remaining: number } | undefined;
  private last: { action: SimAction; malformed: boolean } | undefined;
  private identicalRetries = 0;
  private verifications = 0;
  private verifiedSinceChange = false;
  private claimWithoutArtifacts = false;
  private readonly workspaceEntries: { name: string; directory: boolean }[] = [];
  private readonly usedExplorations = new Set<string>();

  constructor(
    private readonly profile: SimProfile,
    private readonly steps: readonly SolutionStep[],
    private readonly task: SimTask,
    private readonly random: Random,
  ) {
    // Episode-level draws, always in this order.
    this.selfContained = random.chance(profile.selfContainedCommands);
    this.verifyBeforeFinish = random.chance(profile.verifyBeforeFinish);
    this.checkDependencies = random.chance(profile.checkDependencies);
    const deep = random.chance(profile.deepExploration.probability);
    this.explorationLeft = deep
      ? random.integer(...profile.deepExploration.calls)
      : random.integer(...profile.exploration);
    this.explorationLeft = Math.max(1, this.explorationLeft);
    const defer = random.chance(profile.deferArtifacts);
    this.deferral = { pending: defer, callsLeft: defer ? random.integer(...profile.deferralCalls) : 0 };
    this.writerSteps = findWriterSteps(steps, task.requiredArtifacts);
    this.knownArtifacts = task.requiredArtifacts.filter((path) => task.instruction.includes(path));
    if (random.chance(profile.useMissingProgram)) {
      const candidates = steps.filter((step) => !step.readOnly);
      if (candidates.length > 0) {
        const step = random.pick(candidates);
        const habit = MISSING_PROGRAM_HABITS.find((entry) => entry.when.test(step.command));
        if (habit) this.plannedPrograms.set(step.index, habit.program);
      }
    }
  }

  /** The next action, given what the model was shown since its previous one. */
  next(observation: SimObservation): SimAction {
    this.turn += 1;
    if (this.turn > SIM_MAX_TURNS) return this.finish('Stopping here.');
    if (observation.instructions !== undefined) this.takeInstructions(observation.instructions);
    for (const message of observation.otherMessages) this.takeInstructions(message);
    if (observation.lastResult !== undefined) this.takeInstructions(observation.lastResult);

    const last = this.last;
    const reading = observation.lastResult === undefined ? undefined : readToolResult(observation.lastResult);
    if (last && observation.lastResult !== undefined) this.learnFromResult(last.action, observation.lastResult);
    // A call whose arguments could not be read did not run: send it again.
    if (last?.malformed) return this.issue(last.action, false);

    const signals = mergeSignals([observation.lastResult ?? '', ...observation.otherMessages].map(readMessageSignals));
    let failureHandled = false;
    let stopRetrying = false;

    // Rule: a message says a program is not installed → switch to an alternative (without that program).
    const notInstalled = [...signals.programsNotInstalled];
    if (signals.unnamedProgramNotInstalled) notInstalled.push(...(reading?.programsNotFound ?? []));
    for (const program of new Set(notInstalled)) {
      const relevant =
        (last?.action.kind === 'shell' && last.action.program === program) ||
        [...this.plannedPrograms.values()].includes(program);
      if (!relevant || this.missingPrograms.has(program)) continue;
      if (this.random.chance(this.profile.switchOnMissingProgram)) {
        this.missingPrograms.add(program);
        if (last?.action.kind === 'shell' && last.action.program === program && last.action.stepIndex !== undefined) {
          this.queue.unshift(this.stepAction(last.action.stepIndex));
          failureHandled = true;
          this.identicalRetries = 0;
        }
      }
    }
    // Rule: a warning about repeating a call or command → stop repeating.
    if (signals.repeatWarning && (this.loop || this.identicalRetries > 0 || reading?.failed)) {
      if (this.random.chance(this.profile.heedRepeatWarning)) {
        this.loop = undefined;
        stopRetrying = true;
        this.queue = this.queue.filter((action) => !(last && sameAction(action, last.action)));
      }
    }
    // Rule: a nudge to stop exploring → start implementing.
    if (signals.explorationNudge && (this.explorationLeft > 0 || this.deferral.callsLeft > 0 || this.loop)) {
      if (this.random.chance(this.profile.heedExplorationNudge)) {
        this.explorationLeft = 0;
        this.deferral.callsLeft = 0;
        this.loop = undefined;
      }
    }
    // Rule: required files reported missing (or finishing refused) → create them by re-running their steps.
    if (signals.missingFiles !== undefined && this.random.chance(this.profile.createMissingFiles)) {
      this.createFiles(signals.missingFiles);
    }

    if (last && reading && !failureHandled) {
      if (last.action.purpose === 'check-program' && last.action.kind === 'shell' && last.action.program) {
        if (reading.failed) this.missingPrograms.add(last.action.program);
        else this.presentPrograms.add(last.action.program);
      } else if (last.action.purpose === 'verify') {
        // Its own check found files missing: the same rule as a report of missing files.
        if (reading.failed && this.random.chance(this.profile.createMissingFiles)) {
          const missing = this.knownArtifacts.filter((path) =>
            new RegExp(`${escapeRegExp(path)}[^\\n]*No such file|No such file[^\\n]*${escapeRegExp(path)}`).test(
              observation.lastResult ?? '',
            ),
          );
          this.createFiles(missing.length > 0 ? missing : this.knownArtifacts);
        }
      } else if (reading.failed && last.action.kind !== 'finish') {
        this.reactToFailure(last.action, reading, stopRetrying);
      } else if (!reading.failed) {
        this.identicalRetries = 0;
      }
    }
    return this.issue(this.choose(), true);
  }

  /** Whether the model's last call was sent with arguments that are not JSON. */
  get lastCallMalformed(): boolean {
    return this.last?.malformed ?? false;
  }

  private takeInstructions(text: string): void {
    for (const kind of readInstructions(text)) {
      if (this.followed.has(kind)) continue;
      if (!this.random.chance(this.profile.followInstruction[kind])) continue;
      this.followed.add(kind);
      if (kind === 'verify-outputs') this.verifyBeforeFinish = true;
      if (kind === 'self-contained-commands') this.selfContained = true;
      if (kind === 'check-dependencies') this.checkDependencies = true;
      if (kind === 'limit-exploration') this.explorationLeft = Math.min(this.explorationLeft, 1);
    }
  }

  /** Rule: a failed call → retry it verbatim, fix what it diagnoses, or move on, by the profile's weights. */
  private reactToFailure(action: SimAction, reading: ToolResultReading, stopRetrying: boolean): void {
    const cause = this.diagnose(action, reading);
    if (action.purpose === 'explore' && cause !== 'missing-program') return;
    if (!this.followed.has('limit-exploration')) {
      this.explorationLeft += this.random.integer(...this.profile.explorationAfterFailure);
    }
    const maxRetries = this.followed.has('avoid-repetition') ? 0 : this.profile.maxIdenticalRetries;
    const weights = { ...this.profile.onFailure };
    if (stopRetrying || this.identicalRetries >= maxRetries) weights.retry = 0;
    if (cause === 'unknown') weights.fix = 0;
    const choice = weights.retry + weights.fix + weights.moveOn > 0 ? this.random.weighted(weights) : 'moveOn';
    if (choice === 'retry') {
      this.identicalRetries += 1;
      this.queue.unshift(action);
      return;
    }
    this.identicalRetries = 0;
    if (choice === 'moveOn') return;
    if (cause === 'missing-program') {
      const programs = action.kind === 'shell' && action.program ? [action.program] : reading.programsNotFound;
      for (const program of programs) this.missingPrograms.add(program);
      if (action.kind === 'shell' && action.stepIndex !== undefined)
        this.queue.unshift(this.stepAction(action.stepIndex));
      else this.queue.unshift({ kind: 'shell', command: 'ls -la', purpose: 'explore' });
    } else if (cause === 'lost-state' && action.kind === 'shell' && action.stepIndex !== undefined) {
      this.selfContained = true;
      this.queue.unshift(this.stepAction(action.stepIndex));
    }
  }

  private diagnose(action: SimAction, reading: ToolResultReading): 'missing-program' | 'lost-state' | 'unknown' {
    if (action.kind !== 'shell') return 'unknown';
    if (action.program && reading.programsNotFound.includes(action.program)) return 'missing-program';
    if (action.purpose === 'explore' && reading.programsNotFound.length > 0) return 'missing-program';
    if (action.purpose === 'step' && action.stepIndex !== undefined && !action.selfContained) {
      if (this.stateEntriesBefore(action.stepIndex).length > 0) return 'lost-state';
    }
    return 'unknown';
  }

  private createFiles(paths: readonly string[]): void {
    let targets = this.steps
      .filter((step) => !step.readOnly && paths.some((path) => stepMentionsPath(step, path)))
      .map((step) => step.index);
    if (targets.length === 0) targets = [...this.writerSteps];
    if (targets.length === 0) return;
    this.deferral = { pending: false, callsLeft: 0 };
    this.claimWithoutArtifacts = false;
    this.loop = undefined;
    this.verifiedSinceChange = false;
    const firstUnissued = targets.find((index) => !this.issuedSteps.has(index));
    // Steps not taken yet (put off, or skipped by an early finish): resume the plan from the first of them.
    if (firstUnissued !== undefined) this.cursor = Math.min(this.cursor, firstUnissued);
    const rerun = targets.filter((index) => this.issuedSteps.has(index));
    this.queue.unshift(...rerun.map((index) => this.stepAction(index)));
  }

  private choose(): SimAction {
    const queued = this.queue.shift();
    if (queued) return queued;
    if (this.loop && this.loop.remaining > 0) {
      this.loop.remaining -= 1;
      const action = this.loop.action;
      if (this.loop.remaining === 0) this.loop = undefined;
      return action;
    }
    if (this.explorationLeft > 0) {
      this.explorationLeft -= 1;
      return this.explore();
    }
    while (this.cursor < this.steps.length) {
      const step = this.steps[this.cursor]!;
      if (this.issuedSteps.has(step.index)) {
        this.cursor += 1;
        continue;
      }
      if (this.deferral.pending && this.writerSteps.includes(step.index)) {
        if (this.deferral.callsLeft > 0) {
          this.deferral.callsLeft -= 1;
          return this.explore();
        }
        this.deferral.pending = false;
        if (this.random.chance(this.profile.finishBeforeArtifacts)) {
          this.claimWithoutArtifacts = true;
          this.cursor = this.steps.length;
          break;
        }
      }
      const program = this.plannedPrograms.get(step.index);
      if (
        program &&
        this.checkDependencies &&
        !this.missingPrograms.has(program) &&
        !this.presentPrograms.has(program) &&
        !this.checkedPrograms.has(program)
      ) {
        this.checkedPrograms.add(program);
        return { kind: 'shell', command: `command -v ${program}`, purpose: 'check-program', program };
      }
      this.cursor += 1;
      return this.stepAction(step.index);
    }
    if (
      this.verifyBeforeFinish &&
      !this.verifiedSinceChange &&
      this.verifications < 3 &&
      this.knownArtifacts.length > 0 &&
      !this.claimWithoutArtifacts
    ) {
      this.verifications += 1;
      this.verifiedSinceChange = true;
      return {
        kind: 'shell',
        command: `ls -l ${this.knownArtifacts.map(shellQuote).join(' ')}`,
        purpose: 'verify',
      };
    }
    const named = this.knownArtifacts.length > 0 ? ` The results are in ${this.knownArtifacts.join(', ')}.` : '';
    return this.finish(`Done: the task is complete.${named}`);
  }

  private finish(summary: string): SimAction {
    return { kind: 'finish', summary, purpose: 'finish' };
  }

  /** Records the action as the model's call of this turn, possibly with unreadable arguments. */
  private issue(action: SimAction, mayLoop: boolean): SimAction {
    if (action.kind === 'shell' && action.purpose === 'step' && action.stepIndex !== undefined) {
      this.issuedSteps.add(action.stepIndex);
      this.verifiedSinceChange = false;
    }
    const readOnly = action.purpose === 'explore' || action.purpose === 'verify';
    if (mayLoop && readOnly && !this.loop && !this.followed.has('avoid-repetition')) {
      if (this.random.chance(this.profile.loopStart)) {
        this.loop = { action, remaining: this.random.integer(...this.profile.loopRepeats) };
      }
    }
    const malformed = action.kind !== 'finish' && this.random.chance(this.profile.malformedCall);
    this.last = { action, malformed };
    return action;
  }

  /** The shell command for a solution step, as the model would write it now. */
  private stepAction(index: number): SimAction {
    const step = this.steps[index]!;
    const program = this.plannedPrograms.get(index);
    const usesProgram = program !== undefined && !this.missingPrograms.has(program);
    const body = usesProgram ? `${programUsage(program, step)} && {\n${step.command}\n}` : step.command;
    const prior = this.stateEntriesBefore(index);
    const selfContained = this.selfContained && prior.length > 0;
    const command = selfContained ? `cd ${shellQuote(this.workdir)}\n${prior.join('\n')}\n${body}` : body;
    return {
      kind: 'shell',
      command,
      purpose: 'step',
      stepIndex: index,
      ...(usesProgram ? { program } : {}),
      ...(selfContained ? { selfContained } : {}),
    };
  }

  private stateEntriesBefore(index: number): string[] {
    return this.steps
      .filter((step) => step.index < index && this.issuedSteps.has(step.index))
      .flatMap((step) => step.stateEntries);
  }

  private learnFromResult(action: SimAction, result: string): void {
    if (action.kind !== 'shell' || !action.command.startsWith('pwd')) return;
    const directory = /^(\/[^\s]*)\s*$/m.exec(result)?.[1];
    if (directory) this.workdir = directory;
    for (const match of result.matchAll(
      /^([dl-])[rwxsStT-]{9}\S*\s+\d+\s+\S+\s+\S+\s+\d+\s+\S+\s+\S+\s+\S+\s+(.+)$/gm,
    )) {
      const name = (match[2] ?? '').split(' -> ')[0]!.trim();
      if (name === '.' || name === '..' || name === '') continue;
      this.workspaceEntries.push({ name, directory: match[1] === 'd' });
    }
  }

  /** A read-only look around: the workspace, the files the instruction names, what the solution touches. */
  private explore(): SimAction {
    if (this.usedExplorations.size === 0) {
      const first: SimAction = { kind: 'shell', command: 'pwd && ls -la', purpose: 'explore' };
      this.usedExplorations.add(describeAction(first));
      return first;
    }
    const artifacts = new Set(this.task.requiredArtifacts);
    const files = new Set<string>();
    const directories = new Set<string>(['.']);
    for (const entry of this.workspaceEntries) (entry.directory ? directories : files).add(entry.name);
    for (const path of pathsIn(this.task.instruction)) if (!artifacts.has(path)) files.add(path);
    for (const step of this.steps) {
      for (const entry of step.stateEntries) {
        const target = /^cd\s+([\w./-]+)$/.exec(entry)?.[1];
        if (target && target !== '..' && !target.startsWith('/')) directories.add(target);
      }
    }
    const candidates: SimAction[] = [
      { kind: 'list_directory', path: '.', purpose: 'explore' },
      { kind: 'shell', command: 'find . -maxdepth 2 -type f | head -n 50', purpose: 'explore' },
      { kind: 'shell', command: 'ls -la', purpose: 'explore' },
    ];
    for (const directory of directories) {
      if (directory === '.') continue;
      candidates.push({ kind: 'shell', command: `ls -la ${shellQuote(directory)}`, purpose: 'explore' });
      candidates.push({ kind: 'list_directory', path: directory, purpose: 'explore' });
    }
    for (const file of files) {
      candidates.push({ kind: 'read_file', path: file, purpose: 'explore' });
      candidates.push({ kind: 'shell', command: `head -n 20 ${shellQuote(file)}`, purpose: 'explore' });
      candidates.push({ kind: 'shell', command: `wc -l ${shellQuote(file)}`, purpose: 'explore' });
    }
    const lastDescription = this.last ? describeAction(this.last.action) : '';
    const fresh = candidates.filter((action) => !this.usedExplorations.has(describeAction(action)));
    const pool = (fresh.length > 0 ? fresh : candidates).filter((action) => describeAction(action) !== lastDescription);
    const chosen = this.random.pick(pool.length > 0 ? pool : candidates);
    this.usedExplorations.add(describeAction(chosen));
    return chosen;
  }
}

/** The steps that write the required files; the last step that changes anything when none names them. */
function findWriterSteps(steps: readonly SolutionStep[], artifacts: readonly string[]): number[] {
  const writers = steps
    .filter((step) => !step.readOnly && artifacts.some((path) => stepMentionsPath(step, path)))
    .map((step) => step.index);
  if (writers.length > 0) return writers;
  const lastChange = [...steps].reverse().find((step) => !step.readOnly);
  return lastChange ? [lastChange.index] : [];
}

function programUsage(program: string, step: SolutionStep): string {
  const habit = MISSING_PROGRAM_HABITS.find((entry) => entry.program === program)!;
  const extension = program === 'jsonlint' ? 'json' : program === 'mlr' ? 'csv' : program === 'xmllint' ? 'xml' : '';
  const file = extension
    ? (pathsIn(step.command).find((path) => path.toLowerCase().endsWith(`.${extension}`)) ?? `*.${extension}`)
    : '';
  return habit.usage.replace('FILE', file.includes('*') ? file : shellQuote(file));
}

function mergeSignals(all: readonly MessageSignals[]): MessageSignals {
  const missing = all
    .filter((signals) => signals.missingFiles !== undefined)
    .flatMap((signals) => signals.missingFiles!);
  const reported = all.some((signals) => signals.missingFiles !== undefined);
  return {
    ...(reported ? { missingFiles: [...new Set(missing)] } : {}),
    repeatWarning: all.some((signals) => signals.repeatWarning),
    programsNotInstalled: [...new Set(all.flatMap((signals) => signals.programsNotInstalled))],
    explorationNudge: all.some((signals) => signals.explorationNudge),
    unnamedProgramNotInstalled: all.some((signals) => signals.unnamedProgramNotInstalled),
  };
}

function sameAction(left: SimAction, right: SimAction): boolean {
  return describeAction(left) === describeAction(right);
}

/** A text that is equal for identical calls. */
export function describeAction(action: SimAction): string {
  switch (action.kind) {
    case 'shell':
      return `shell ${action.command}`;
    case 'read_file':
    case 'list_directory':
      return `${action.kind} ${action.path}`;
    case 'finish':
      return `finish ${action.summary}`;
  }
}

/** Quotes a word for bash when it needs quoting. */
export function shellQuote(word: string): string {
  return /^[\w./@%+=:,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
