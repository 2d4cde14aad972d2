import type { InstructionKind } from './signals.js';

/**
 * The simulated model's profiles: one table of probabilities each, read by the same fixed policy. A profile sets how
 * often a failure mechanism is injected and how the model reacts to what it is shown; nothing else differs between
 * profiles. The numbers make a test double with distinct, mineable failure mixes; they are no claim about any real
 * model. Every reaction probability is below 1, so a harness edit that relies on a reaction can still fail.
 */
export interface SimProfile {
  readonly name: string;
  readonly summary: string;
  /** The failure mechanisms this profile is built to show, in the detectors' words. */
  readonly mechanisms: readonly string[];

  // Exploration
  /** Read-only calls before the first step, drawn uniformly from [min, max]. */
  readonly exploration: readonly [number, number];
  /** Chance of an episode of long exploration instead, and its length. */
  readonly deepExploration: { readonly probability: number; readonly calls: readonly [number, number] };
  /** Extra read-only calls after each failed call. */
  readonly explorationAfterFailure: readonly [number, number];

  // Shell state
  /** Chance to start by writing each command so that it stands alone (re-doing earlier `cd`/`export` lines). */
  readonly selfContainedCommands: number;

  // Required outputs
  /** Chance that the episode puts off the steps that write the required files, inspecting first. */
  readonly deferArtifacts: number;
  /** Read-only calls made before the deferred steps. */
  readonly deferralCalls: readonly [number, number];
  /** Chance, when the deferred steps come due, of calling finish without them (claiming they are done). */
  readonly finishBeforeArtifacts: number;
  /** Chance of checking the required files exist before finishing, unprompted. */
  readonly verifyBeforeFinish: number;

  // Tool loops
  /** After a read-only call, chance to start repeating it identically. */
  readonly loopStart: number;
  /** Identical repeats in such a loop. */
  readonly loopRepeats: readonly [number, number];

  // Dependencies
  /** Chance that the episode reaches for a program that is not installed in one of its steps. */
  readonly useMissingProgram: number;
  /** Chance of checking a program is installed (`command -v`) before using it, unprompted. */
  readonly checkDependencies: number;

  // Reactions to a failed call: relative weights of the three choices, and the most identical retries in a row.
  readonly onFailure: { readonly retry: number; readonly fix: number; readonly moveOn: number };
  readonly maxIdenticalRetries: number;

  // Reactions to what the model is shown (each a probability, drawn every time the signal appears).
  /** Re-runs the steps that write files reported missing. */
  readonly createMissingFiles: number;
  /** Stops repeating a call or command after a warning about repetition. */
  readonly heedRepeatWarning: number;
  /** Switches to an alternative after being told a program is not installed. */
  readonly switchOnMissingProgram: number;
  /** Stops exploring after a nudge to start implementing. */
  readonly heedExplorationNudge: number;
  /** Follows each kind of advice in its instructions (system prompt, tool descriptions, injected messages). */
  readonly followInstruction: Readonly<Record<InstructionKind, number>>;

  /** Chance that a tool call's arguments are not valid JSON. */
  readonly malformedCall: number;
}

/** Nominal prices used for the cost figures of simulated runs, US dollars per million tokens. */
export const SIM_PRICE_PER_MILLION_TOKENS = { prompt: 0.5, completion: 2 } as const;

/** Model turns after which a simulated episode finishes whatever its state, so it can never run forever. */
export const SIM_MAX_TURNS = 200;

/** The profiles `sim:PROFILE` accepts. */
export const simProfiles: Readonly<Record<string, SimProfile>> = {
  clean: {
    name: 'clean',
    summary: 'A control: follows the reference solution carefully and mostly succeeds.',
    mechanisms: [],
    exploration: [1, 2],
    deepExploration: { probability: 0, calls: [0, 0] },
    explorationAfterFailure: [0, 1],
    selfContainedCommands: 0.9,
    deferArtifacts: 0.05,
    deferralCalls: [1, 2],
    finishBeforeArtifacts: 0.1,
    verifyBeforeFinish: 0.6,
    loopStart: 0.01,
    loopRepeats: [1, 2],
    useMissingProgram: 0.05,
    checkDependencies: 0.5,
    onFailure: { retry: 0.1, fix: 0.85, moveOn: 0.05 },
    maxIdenticalRetries: 1,
    createMissingFiles: 0.95,
    heedRepeatWarning: 0.9,
    switchOnMissingProgram: 0.95,
    heedExplorationNudge: 0.9,
    followInstruction: {
      'verify-outputs': 0.9,
      'self-contained-commands': 0.9,
      'check-dependencies': 0.9,
      'limit-exploration': 0.9,
      'avoid-repetition': 0.9,
    },
    malformedCall: 0.005,
  },
  'late-artifacts': {
    name: 'late-artifacts',
    summary:
      'Creates required outputs late and loops on tools: puts off the steps that write the required files, re-reads ' +
      'the same things identically, and often finishes before writing them.',
    mechanisms: ['premature completion claim', 'missing required artifact', 'tool-call loop'],
    exploration: [1, 3],
    deepExploration: { probability: 0, calls: [0, 0] },
    explorationAfterFailure: [0, 1],
    selfContainedCommands: 0.8,
    deferArtifacts: 0.9,
    deferralCalls: [2, 5],
    finishBeforeArtifacts: 0.6,
    verifyBeforeFinish: 0.05,
    loopStart: 0.3,
    loopRepeats: [2, 5],
    useMissingProgram: 0.05,
    checkDependencies: 0.3,
    onFailure: { retry: 0.2, fix: 0.6, moveOn: 0.2 },
    maxIdenticalRetries: 2,
    createMissingFiles: 0.75,
    heedRepeatWarning: 0.7,
    switchOnMissingProgram: 0.9,
    heedExplorationNudge: 0.8,
    followInstruction: {
      'verify-outputs': 0.7,
      'self-contained-commands': 0.7,
      'check-dependencies': 0.7,
      'limit-exploration': 0.6,
      'avoid-repetition': 0.6,
    },
    malformedCall: 0.01,
  },
  'blind-retry': {
    name: 'blind-retry',
    summary:
      'Retries failed commands and skips dependency checks: reaches for programs that are not installed without ' +
      'checking, and re-runs a failing command verbatim several times before changing anything.',
    mechanisms: ['missing dependency', 'repeated failed command'],
    exploration: [1, 2],
    deepExploration: { probability: 0, calls: [0, 0] },
    explorationAfterFailure: [0, 0],
    selfContainedCommands: 0.75,
    deferArtifacts: 0.05,
    deferralCalls: [1, 2],
    finishBeforeArtifacts: 0.1,
    verifyBeforeFinish: 0.3,
    loopStart: 0.02,
    loopRepeats: [1, 2],
    useMissingProgram: 0.9,
    checkDependencies: 0,
    onFailure: { retry: 0.7, fix: 0.12, moveOn: 0.18 },
    maxIdenticalRetries: 6,
    createMissingFiles: 0.85,
    heedRepeatWarning: 0.65,
    switchOnMissingProgram: 0.7,
    heedExplorationNudge: 0.8,
    followInstruction: {
      'verify-outputs': 0.6,
      'self-contained-commands': 0.6,
      'check-dependencies': 0.6,
      'limit-exploration': 0.6,
      'avoid-repetition': 0.5,
    },
    malformedCall: 0.01,
  },
  'lost-state': {
    name: 'lost-state',
    summary:
      'Loses environment state and keeps exploring: relies on `cd`/`export`/`source` from earlier calls as if the ' +
      'shell persisted, and spends many calls on read-only exploration, sometimes until the turn budget runs out.',
    mechanisms: ['lost environment state', 'exploration without implementation', 'budget or time exhaustion'],
    exploration: [4, 9],
    deepExploration: { probability: 0.3, calls: [35, 60] },
    explorationAfterFailure: [2, 5],
    selfContainedCommands: 0.03,
    deferArtifacts: 0.05,
    deferralCalls: [1, 2],
    finishBeforeArtifacts: 0.1,
    verifyBeforeFinish: 0.3,
    loopStart: 0.03,
    loopRepeats: [1, 2],
    useMissingProgram: 0.05,
    checkDependencies: 0.2,
    onFailure: { retry: 0.25, fix: 0.15, moveOn: 0.6 },
    maxIdenticalRetries: 2,
    createMissingFiles: 0.8,
    heedRepeatWarning: 0.8,
    switchOnMissingProgram: 0.9,
    heedExplorationNudge: 0.6,
    followInstruction: {
      'verify-outputs': 0.6,
      'self-contained-commands': 0.15,
      'check-dependencies': 0.6,
      'limit-exploration': 0.5,
      'avoid-repetition': 0.6,
    },
    malformedCall: 0.01,
  },
};

/** The profile for a name, or undefined. */
export function findSimProfile(name: string): SimProfile | undefined {
  return Object.hasOwn(simProfiles, name) ? simProfiles[name] : undefined;
}
