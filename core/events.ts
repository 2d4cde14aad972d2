import { z } from 'zod';

/**
 * The event vocabulary of the log. Names are noun-verb and never change once stored; a changed shape gets a
 * `schemaVersion` and an upcaster instead. Every importer and the agent runtime emit these same events.
 */

/** `unknown`: the run ended but its source holds no verdict (a bare trajectory). */
export const Outcome = z.enum(['passed', 'failed', 'invalid', 'unknown']);
export type Outcome = z.infer<typeof Outcome>;

/** Where an event came from: a format, a file and a position inside it (a line, a JSON path). */
export const EventSource = z.object({
  format: z.string().min(1),
  file: z.string().optional(),
  position: z.string().optional(),
});
export type EventSource = z.infer<typeof EventSource>;

const EventBase = z.object({
  /** Derived from the source (e.g. trial id + step), so importing the same input twice adds nothing. */
  id: z.string().min(1).max(512),
  runId: z.string().min(1).max(512),
  /** ISO 8601 time at which the step happened, when the source knows it. */
  time: z.iso.datetime({ offset: true, local: true }).optional(),
  source: EventSource.optional(),
});

const count = z.number().int().nonnegative();
const money = z.number().nonnegative();

export const RunStarted = EventBase.extend({
  type: z.literal('run-start'),
  data: z.object({
    task: z.string().min(1),
    dataset: z.string().optional(),
    model: z.string().optional(),
    agent: z.string().optional(),
    agentVersion: z.string().optional(),
    harnessVersion: z.string().optional(),
    attempt: count.optional(),
    split: z.string().optional(),
    seed: z.number().int().optional(),
    trialName: z.string().optional(),
    instruction: z.string().optional(),
    /** A sub-agent or continuation trajectory points at the run it belongs to. */
    parentRunId: z.string().optional(),
    relation: z.enum(['subagent', 'continuation']).optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
  }),
});
export type RunStarted = z.infer<typeof RunStarted>;

export const StepCreated = EventBase.extend({
  type: z.literal('step-create'),
  data: z.object({
    step: count,
    role: z.enum(['system', 'user', 'agent']),
    message: z.string(),
    reasoning: z.string().optional(),
    model: z.string().optional(),
    promptTokens: count.optional(),
    completionTokens: count.optional(),
    cachedTokens: count.optional(),
    costUsd: money.optional(),
    /** The step repeats context from an earlier trajectory (ATIF `is_copied_context`). */
    copiedContext: z.boolean().optional(),
    extra: z.record(z.string(), z.unknown()).optional(),
  }),
});
export type StepCreated = z.infer<typeof StepCreated>;

export const ToolCalled = EventBase.extend({
  type: z.literal('tool-call'),
  data: z.object({
    step: count,
    callId: z.string().min(1),
    tool: z.string().min(1),
    arguments: z.record(z.string(), z.unknown()),
    /** The shell command text when the call runs one, for detectors and analysts. */
    command: z.string().optional(),
  }),
});
export type ToolCalled = z.infer<typeof ToolCalled>;

export const ToolResulted = EventBase.extend({
  type: z.literal('tool-result'),
  data: z.object({
    step: count,
    callId: z.string().optional(),
    output: z.string(),
    exitCode: z.number().int().optional(),
    error: z.string().optional(),
  }),
});
export type ToolResulted = z.infer<typeof ToolResulted>;

export const TestResult = z.object({
  name: z.string().min(1),
  status: z.enum(['passed', 'failed', 'skipped', 'other']),
  message: z.string().optional(),
  durationMs: z.number().nonnegative().optional(),
});
export type TestResult = z.infer<typeof TestResult>;

export const RunVerified = EventBase.extend({
  type: z.literal('run-verify'),
  data: z.object({
    reward: z.number().optional(),
    tests: z.array(TestResult),
  }),
});
export type RunVerified = z.infer<typeof RunVerified>;

export const RunEnded = EventBase.extend({
  type: z.literal('run-end'),
  data: z.object({
    outcome: Outcome,
    reward: z.number().optional(),
    /** Why the run failed or is invalid, e.g. `agent_timeout`, `exit_cost`, an exception type. */
    failureReason: z.string().optional(),
    promptTokens: count.optional(),
    completionTokens: count.optional(),
    costUsd: money.optional(),
    startedAt: z.iso.datetime({ offset: true, local: true }).optional(),
    endedAt: z.iso.datetime({ offset: true, local: true }).optional(),
  }),
});
export type RunEnded = z.infer<typeof RunEnded>;

export const Criticality = z.enum(['root-cause', 'contributor', 'friction', 'unknown']);
export type Criticality = z.infer<typeof Criticality>;

/**
 * An LLM's diagnosis of one failed run (the paper's signature). `runId` is the diagnosed run; the id is derived from
 * the prompt version and the model, so a run is never diagnosed twice by the same prompt and model.
 */
export const DiagnosisCreated = EventBase.extend({
  type: z.literal('diagnosis-create'),
  data: z.object({
    promptVersion: z.string().min(1),
    model: z.string().min(1),
    terminalCause: z.string().min(1),
    criticality: Criticality,
    mechanism: z.string().min(1),
    evidenceSteps: z.array(count),
    reasoning: z.string(),
  }),
});
export type DiagnosisCreated = z.infer<typeof DiagnosisCreated>;

/**
 * A harness version: its content-addressed id (hash of the canonical spec), its parent and the spec itself. Stored in
 * the stream `harness:<versionId>`, so registering the same spec twice adds nothing.
 */
export const HarnessVersionCreated = EventBase.extend({
  type: z.literal('harness-version-create'),
  data: z.object({
    versionId: z.string().min(1),
    parentId: z.string().optional(),
    description: z.string().optional(),
    spec: z.record(z.string(), z.unknown()),
  }),
});
export type HarnessVersionCreated = z.infer<typeof HarnessVersionCreated>;

/** One operation of an RFC 6902 JSON Patch on a harness spec. */
export const PatchOperation = z.object({
  op: z.enum(['add', 'remove', 'replace', 'move', 'copy', 'test']),
  path: z.string(),
  from: z.string().optional(),
  value: z.unknown().optional(),
});
export type PatchOperation = z.infer<typeof PatchOperation>;

/**
 * A candidate harness edit, tied to one mined weakness. Stored in the stream `proposal:<proposalId>`; the id is
 * derived from the base version and the patch, so proposing the same edit again adds nothing.
 */
export const ProposalCreated = EventBase.extend({
  type: z.literal('proposal-create'),
  data: z.object({
    proposalId: z.string().min(1),
    baseVersionId: z.string().min(1),
    /** The improve job and iteration that asked for it, when there was one. */
    jobId: z.string().optional(),
    iteration: count.optional(),
    proposer: z.string().min(1),
    clusterId: z.string().optional(),
    mechanism: z.string().optional(),
    surface: z.string().min(1),
    patch: z.array(PatchOperation),
    expectedEffect: z.string(),
    preserve: z.string(),
    risk: z.enum(['low', 'medium', 'high']),
    rationale: z.string().optional(),
  }),
});
export type ProposalCreated = z.infer<typeof ProposalCreated>;

/**
 * A decision about a proposal: screened out by replay, or accepted / rejected by the gate, with the numbers behind it.
 * Stored in the proposal's stream.
 */
export const ValidationDecided = EventBase.extend({
  type: z.literal('validation-decide'),
  data: z.object({
    proposalId: z.string().min(1),
    stage: z.enum(['replay', 'gate', 'merge']),
    decision: z.enum(['accepted', 'rejected', 'screened-out']),
    gate: z.string().optional(),
    reasons: z.array(z.string()),
    metrics: z.record(z.string(), z.unknown()),
  }),
});
export type ValidationDecided = z.infer<typeof ValidationDecided>;

/** A harness version becomes the current one (a promotion after validation, or a rollback). Stream `harness-head`. */
export const HarnessPromoted = EventBase.extend({
  type: z.literal('harness-promote'),
  data: z.object({
    versionId: z.string().min(1),
    previousVersionId: z.string().optional(),
    reason: z.enum(['promotion', 'rollback']),
    proposalIds: z.array(z.string()),
    changelog: z.string(),
  }),
});
export type HarnessPromoted = z.infer<typeof HarnessPromoted>;

/**
 * Compiled with `z.compile`: the same schema, with generated code for the common case of valid input (about a third
 * of the runtime parser's cost per event, which matters when an import validates millions). It accepts and rejects
 * exactly what the runtime parser does; invalid input is handed to the runtime parser, so errors read the same.
 */
export const TraceEvent = z.compile(
  z.discriminatedUnion('type', [
    RunStarted,
    StepCreated,
    ToolCalled,
    ToolResulted,
    RunVerified,
    RunEnded,
    DiagnosisCreated,
    HarnessVersionCreated,
    ProposalCreated,
    ValidationDecided,
    HarnessPromoted,
  ]),
);
export type TraceEvent = z.infer<typeof TraceEvent>;
export type EventType = TraceEvent['type'];

export const eventTypes: readonly EventType[] = TraceEvent.options.map((option) => option.shape.type.value);

/** The event types that describe what happened in a run; the projections `runs`, `steps`, … are folds of these. */
export const runEventTypes = ['run-start', 'step-create', 'tool-call', 'tool-result', 'run-verify', 'run-end'] as const;

/** An event as read back from the log: what was written, plus its position in the global sequence. */
export type RecordedEvent = TraceEvent & { seq: number; recordedAt: string };

/** Formats a zod error as one line a user can act on: the path and the reason of each issue. */
export function describeSchemaError(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(event)'}: ${issue.message}`)
    .join('; ');
}
