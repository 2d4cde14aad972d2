import { OpenAiLlm, readLlmConfig } from '../analytics/llm.js';
import { UserError } from '../core/index.js';
import { resolveModelFactory } from '../harness/index.js';
import { LlmProposer, type Proposer, RuleProposer } from '../proposer/index.js';
import { DEFAULT_SUITE_ROOT, loadSuite, type Split, type Suite } from '../tasks/index.js';
import type { GateMode } from './gate.js';
import { defaultJobId, type ImproveOptions, selectSplitTasks } from './improve.js';
import { checkJobId } from './trials.js';

/**
 * The options of an improve job as a user gives them, before they are checked: the command line's strings
 * (`selfharness improve`) or the JSON values of `POST /v1/improve`. Both go through `parseImproveRequest`, so both get
 * the same defaults, the same checks and the same job id.
 */
export interface ImproveRequest {
  readonly model?: unknown;
  readonly iterations?: unknown;
  readonly candidates?: unknown;
  readonly attempts?: unknown;
  readonly gate?: unknown;
  readonly seed?: unknown;
  readonly proposer?: unknown;
  /** The proposing model for `proposer: llm` (default: `$SELFHARNESS_LLM_MODEL`). */
  readonly llmModel?: unknown;
  readonly concurrency?: unknown;
  readonly jobId?: unknown;
  /** Task ids: a list, or a comma-separated string (`none` for no task). */
  readonly heldIn?: unknown;
  readonly heldOut?: unknown;
  readonly sealed?: unknown;
  readonly maxPassingFireRate?: unknown;
}

export type ImproveRequestField = keyof ImproveRequest;

/** Every field of a request, in the order they are documented. */
export const IMPROVE_REQUEST_FIELDS: readonly ImproveRequestField[] = [
  'model',
  'iterations',
  'candidates',
  'attempts',
  'gate',
  'seed',
  'proposer',
  'llmModel',
  'concurrency',
  'jobId',
  'heldIn',
  'heldOut',
  'sealed',
  'maxPassingFireRate',
];

/** The command line's name of each field, for error messages that name the flag the user typed. */
export const IMPROVE_FLAGS: Readonly<Record<ImproveRequestField, string>> = {
  model: '--model',
  iterations: '--iterations',
  candidates: '--candidates',
  attempts: '--attempts',
  gate: '--gate',
  seed: '--seed',
  proposer: '--proposer',
  llmModel: '--llm-model',
  concurrency: '--concurrency',
  jobId: '--job',
  heldIn: '--held-in',
  heldOut: '--held-out',
  sealed: '--sealed',
  maxPassingFireRate: '--max-passing-fire-rate',
};

export const GATES: readonly GateMode[] = ['strict', 'paper'];
export const PROPOSERS = ['rules', 'llm'] as const;
export type ProposerKind = (typeof PROPOSERS)[number];

/** The defaults of every optional setting, shared by the command line and the HTTP API. */
export const IMPROVE_DEFAULTS = {
  iterations: 2,
  candidates: 3,
  gate: 'strict' as GateMode,
  attempts: 2,
  concurrency: 2,
  proposer: 'rules' as ProposerKind,
  seed: 1,
  maxPassingFireRate: 0.5,
} as const;

/** The checked settings of a job as plain JSON: what a job shows as its options. */
export interface ImproveSettings {
  readonly model: string;
  readonly iterations: number;
  readonly candidates: number;
  readonly attempts: number;
  readonly gate: GateMode;
  readonly seed: number;
  readonly proposer: string;
  readonly concurrency: number;
  readonly maxPassingFireRate: number;
  /** The job in the log: given, or derived from the model and the options that change results. */
  readonly jobId: string;
  /** The tasks of each split the job uses. */
  readonly tasks: Readonly<Record<Split, readonly string[]>>;
}

export interface ParseImproveOptions {
  /** How a field is named in messages (default: its JSON name). */
  readonly names?: Readonly<Record<ImproveRequestField, string>>;
  /** The task suite (default: the bundled one). */
  readonly suite?: Suite;
  /** Where `openai:` models and the LLM proposer read their endpoint (default: `process.env`). */
  readonly environment?: Record<string, string | undefined>;
}

/**
 * Checks a request and returns the options for `improve` with the job id resolved, and the same settings as plain
 * JSON. Every check happens here, before anything is written: the model is resolved, the task ids are looked up in
 * their splits, the LLM endpoint's settings are read. A bad value throws a `UserError` that names the field (as
 * `names` spells it) and says what to give instead.
 */
export async function parseImproveRequest(
  request: ImproveRequest,
  parseOptions: ParseImproveOptions = {},
): Promise<{ options: ImproveOptions & { readonly jobId: string }; settings: ImproveSettings }> {
  const names = parseOptions.names ?? identityNames();
  const environment = parseOptions.environment ?? process.env;
  const model = await parseModel(request.model, names.model, environment);
  const gate = parseChoice(request.gate, names.gate, GATES, IMPROVE_DEFAULTS.gate);
  const iterations = parseInteger(request.iterations, names.iterations, 1, IMPROVE_DEFAULTS.iterations);
  const candidates = parseInteger(request.candidates, names.candidates, 1, IMPROVE_DEFAULTS.candidates);
  const attempts = parseInteger(request.attempts, names.attempts, 1, IMPROVE_DEFAULTS.attempts);
  const concurrency = parseInteger(request.concurrency, names.concurrency, 1, IMPROVE_DEFAULTS.concurrency);
  const seed = parseInteger(request.seed, names.seed, 0, IMPROVE_DEFAULTS.seed);
  const maxPassingFireRate = parseRate(request.maxPassingFireRate, names.maxPassingFireRate);
  const proposer = createProposer(request, names, environment);
  const suite = parseOptions.suite ?? loadSuite(DEFAULT_SUITE_ROOT);
  const taskIds: Partial<Record<Split, readonly string[]>> = {};
  for (const [split, field] of [
    ['held-in', 'heldIn'],
    ['held-out', 'heldOut'],
    ['sealed', 'sealed'],
  ] as const) {
    const ids = parseTaskList(request[field], names[field]);
    if (ids === undefined) continue;
    taskIds[split] = ids;
    try {
      selectSplitTasks(suite, { [split]: ids });
    } catch (error) {
      throw prefixed(names[field], error);
    }
  }
  const splits = selectSplitTasks(suite, taskIds);
  const tasks = {
    'held-in': splits['held-in'].map((task) => task.id),
    'held-out': splits['held-out'].map((task) => task.id),
    sealed: splits.sealed.map((task) => task.id),
  };
  let jobId: string;
  if (request.jobId === undefined || request.jobId === null) {
    jobId = defaultJobId({ model, proposer: proposer.name, candidates, gate, attempts, seed, tasks });
  } else {
    if (typeof request.jobId !== 'string') throw new UserError(`${names.jobId} must be a string, e.g. "my-job-1".`);
    try {
      jobId = checkJobId(request.jobId);
    } catch (error) {
      throw prefixed(names.jobId, error);
    }
  }
  return {
    options: {
      model,
      iterations,
      candidates,
      gate,
      attempts,
      concurrency,
      seed,
      proposer,
      suite,
      taskIds,
      maxPassingFireRate,
      jobId,
    },
    settings: {
      model,
      iterations,
      candidates,
      attempts,
      gate,
      seed,
      proposer: proposer.name,
      concurrency,
      maxPassingFireRate,
      jobId,
      tasks,
    },
  };
}

function identityNames(): Record<ImproveRequestField, string> {
  return Object.fromEntries(IMPROVE_REQUEST_FIELDS.map((field) => [field, field])) as Record<
    ImproveRequestField,
    string
  >;
}

/** A checked error of a field, with the field's name in front so that the user knows which one to change. */
function prefixed(name: string, error: unknown): unknown {
  if (!(error instanceof UserError)) return error;
  return new UserError(`${name}: ${error.message}`, { cause: error });
}

async function parseModel(value: unknown, name: string, environment: Record<string, string | undefined>) {
  if (typeof value !== 'string' || value.trim() === '')
    throw new UserError(`${name} is required: the agent model, sim:PROFILE (e.g. sim:late-artifacts) or openai:MODEL.`);
  try {
    await resolveModelFactory(value, environment);
  } catch (error) {
    throw prefixed(name, error);
  }
  return value;
}

function parseChoice<T extends string>(value: unknown, name: string, choices: readonly T[], fallback: T): T {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'string' || !choices.includes(value as T))
    throw new UserError(`Unknown ${name} ${JSON.stringify(value)}: use ${choices.join(' or ')}.`);
  return value as T;
}

function parseInteger(value: unknown, name: string, minimum: number, fallback: number): number {
  if (value === undefined || value === null) return fallback;
  const number = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < minimum)
    throw new UserError(`${name} must be a whole number of at least ${minimum}, not ${quote(value)}.`);
  return number;
}

function parseRate(value: unknown, name: string): number {
  if (value === undefined || value === null) return IMPROVE_DEFAULTS.maxPassingFireRate;
  const number = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isFinite(number) || number < 0 || number > 1)
    throw new UserError(`${name} must be a number from 0 to 1, not ${quote(value)}.`);
  return number;
}

/** A list of task ids, or a comma-separated string of them; `none` (or an empty list) means no task. */
function parseTaskList(value: unknown, name: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') {
    if (value.trim() === 'none') return [];
    return value
      .split(',')
      .map((entry) => entry.trim())
      .filter(Boolean);
  }
  if (Array.isArray(value) && value.every((entry) => typeof entry === 'string')) return value as string[];
  throw new UserError(
    `${name} must be a list of task ids (or one comma-separated string; "none" for no task), not ${quote(value)}.`,
  );
}

function createProposer(
  request: ImproveRequest,
  names: Readonly<Record<ImproveRequestField, string>>,
  environment: Record<string, string | undefined>,
): Proposer {
  const kind = parseChoice(request.proposer, names.proposer, PROPOSERS, IMPROVE_DEFAULTS.proposer);
  if (kind === 'rules') return new RuleProposer();
  if (request.llmModel !== undefined && request.llmModel !== null && typeof request.llmModel !== 'string')
    throw new UserError(`${names.llmModel} must be a model name, e.g. "gpt-4.1-mini".`);
  const config = readLlmConfig(environment, request.llmModel ? { model: request.llmModel as string } : {});
  return new LlmProposer(new OpenAiLlm(config));
}

const quote = (value: unknown) => (typeof value === 'string' ? `"${value}"` : JSON.stringify(value));
