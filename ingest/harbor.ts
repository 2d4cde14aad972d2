import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import {
  describeSchemaError,
  type Outcome,
  type RunEnded,
  type RunStarted,
  type RunVerified,
  type TestResult,
} from '../core/index.js';
import { type Adapter, eventItem, type ParseItem, rejectItem, type SourceUnit } from './adapter.js';
import {
  readJsonFile,
  readTrajectoryFile,
  stringifyRaw,
  type TrajectoryTotals,
  toCount,
  toIsoTime,
  toMoney,
} from './atif.js';

const FORMAT = 'harbor';

/**
 * Exceptions Harbor records that are the agent's own doing: the agent ran out of time or out of context. Any other
 * exception (the environment failed to start, Docker died, the verifier could not write a reward, ...) is the
 * infrastructure's, and a trial that has one and no reward is `invalid`, never an agent failure.
 */
export const AGENT_EXCEPTIONS: ReadonlySet<string> = new Set([
  'AgentTimeoutError',
  'ContextLengthExceededError',
  'OutputLengthExceededError',
]);

/** Names directly inside a trial directory that a job directory (`jobs/<job>/`) does not have. */
const TRIAL_ENTRIES = new Set(['agent', 'verifier', 'artifacts', 'exception.txt', 'trial.log']);
const MAX_SNIFFED_RESULT_BYTES = 8 << 20;

const Timing = z.object({ started_at: z.string().nullish(), finished_at: z.string().nullish() });

/** The fields of Harbor's `TrialResult` (result.json) this importer reads. */
const TrialResult = z.object({
  id: z.string().nullish(),
  task_name: z.string().nullish(),
  trial_name: z.string().nullish(),
  trial_uri: z.string().nullish(),
  source: z.string().nullish(),
  task_checksum: z.string().nullish(),
  task_id: z.object({ path: z.string().nullish() }).nullish(),
  config: z
    .object({
      job_id: z.string().nullish(),
      task: z.object({ path: z.string().nullish(), source: z.string().nullish() }).nullish(),
      agent: z.object({ model_name: z.string().nullish() }).nullish(),
    })
    .nullish(),
  agent_info: z
    .object({
      name: z.string().nullish(),
      version: z.string().nullish(),
      model_info: z.object({ name: z.string().nullish(), provider: z.string().nullish() }).nullish(),
    })
    .nullish(),
  agent_result: z
    .object({
      n_input_tokens: z.number().nullish(),
      n_cache_tokens: z.number().nullish(),
      n_output_tokens: z.number().nullish(),
      cost_usd: z.number().nullish(),
      metadata: z.record(z.string(), z.unknown()).nullish(),
    })
    .nullish(),
  verifier_result: z.object({ rewards: z.record(z.string(), z.number().nullish()).nullish() }).nullish(),
  exception_info: z
    .object({ exception_type: z.string(), exception_message: z.string().nullish(), occurred_at: z.string().nullish() })
    .nullish(),
  started_at: z.string().nullish(),
  finished_at: z.string().nullish(),
  environment_setup: Timing.nullish(),
  agent_setup: Timing.nullish(),
  agent_execution: Timing.nullish(),
  verifier: Timing.nullish(),
});
type TrialResult = z.infer<typeof TrialResult>;

/** The job's `config.json` one folder up: only its name and datasets. */
const JobConfig = z.object({
  job_name: z.string().nullish(),
  datasets: z
    .array(z.object({ name: z.string().nullish(), version: z.string().nullish(), path: z.string().nullish() }))
    .nullish(),
});
type JobConfig = z.infer<typeof JobConfig>;

/** A CTRF report (`verifier/ctrf.json`): one entry per test. */
const CtrfReport = z.object({
  results: z.object({
    tool: z.object({ name: z.string().nullish() }).nullish(),
    summary: z.object({ start: z.number().nullish() }).nullish(),
    tests: z.array(z.unknown()),
  }),
});
const CtrfTest = z.object({
  name: z.string().min(1),
  status: z.string(),
  duration: z.number().nullish(),
  message: z.string().nullish(),
  trace: z.string().nullish(),
});

export interface Verdict {
  reward?: number;
  /** The exception type Harbor recorded for the trial, if any. */
  exceptionType?: string;
  tests: readonly TestResult[];
}

/**
 * Decides a trial's outcome. A reward decides when there is one: ≥ 1 passed, below 1 failed (the reason is the
 * exception when there was one, else `reward <r>`). Without a reward, the agent's own exception (see
 * `AGENT_EXCEPTIONS`) is a failure and any other exception makes the trial `invalid`; with neither, the tests decide,
 * and with no tests either the outcome is `unknown`.
 */
export function decideOutcome(verdict: Verdict): { outcome: Outcome; failureReason?: string } {
  const { reward, exceptionType, tests } = verdict;
  if (reward !== undefined) {
    if (reward >= 1) return { outcome: 'passed' };
    return { outcome: 'failed', failureReason: exceptionType ?? `reward ${reward}` };
  }
  if (exceptionType !== undefined) {
    return { outcome: AGENT_EXCEPTIONS.has(exceptionType) ? 'failed' : 'invalid', failureReason: exceptionType };
  }
  if (tests.some((test) => test.status === 'failed')) return { outcome: 'failed', failureReason: 'tests failed' };
  if (tests.some((test) => test.status === 'passed')) return { outcome: 'passed' };
  return { outcome: 'unknown', failureReason: 'no reward, exception or test results in the trial' };
}

/**
 * Harbor trial directories (Terminal-Bench 2.0): `result.json`, `agent/trajectory.json` (ATIF, with continuation and
 * sub-agent files beside it), `verifier/{ctrf.json,reward.txt,reward.json}` and `exception.txt`. One trial is one run
 * `harbor:<trial id>`; a trial without a trajectory still becomes a run with its verdict.
 */
export const harborAdapter: Adapter = {
  format: FORMAT,
  description: 'Harbor trial directories (Terminal-Bench 2.0): result.json, agent/trajectory.json (ATIF), verifier/',
  claimsDirectory(directory, entries) {
    if (!entries.includes('result.json')) return false;
    if (entries.some((entry) => TRIAL_ENTRIES.has(entry))) return true;
    return isTrialResult(join(directory, 'result.json'));
  },
  async *parse(unit: SourceUnit): AsyncIterable<ParseItem | readonly ParseItem[]> {
    const path = resolve(unit.path);
    if (!unit.isDirectory && basename(path) !== 'result.json') {
      const reason = 'a Harbor trial is read as a directory (the folder holding result.json); pass that folder';
      yield rejectItem(FORMAT, path, '(file)', reason, '');
      return;
    }
    yield* parseTrial(unit.isDirectory ? path : dirname(path));
  },
};

async function* parseTrial(directory: string): AsyncGenerator<ParseItem | readonly ParseItem[]> {
  const resultFile = join(directory, 'result.json');
  const result = yield* readTrialResult(resultFile);
  const job = await readJobConfig(dirname(directory));
  const runId = `${FORMAT}:${result?.id || result?.trial_name || basename(directory)}`;
  const exception = result?.exception_info
    ? { type: result.exception_info.exception_type, message: result.exception_info.exception_message ?? undefined }
    : readExceptionFile(join(directory, 'exception.txt'));
  const rewards = yield* readRewards(directory, result);
  const reward =
    rewards?.reward ?? (rewards && Object.keys(rewards).length === 1 ? Object.values(rewards)[0] : undefined);
  const tests = yield* readCtrf(join(directory, 'verifier', 'ctrf.json'));
  const startedAt = toIsoTime(result?.started_at);
  const start = runStartData(directory, result, job, exception, rewards);

  let totals: TrajectoryTotals | undefined;
  const trajectoryFile = join(directory, 'agent', 'trajectory.json');
  if (existsSync(trajectoryFile)) {
    totals = yield* readTrajectoryFile(trajectoryFile, {
      format: FORMAT,
      runId,
      known: { start, startedAt },
      endRun: false,
    });
  } else {
    yield* rejectUnplacedTrajectories(join(directory, 'agent'));
  }
  if (totals === undefined) {
    const startEvent: RunStarted = {
      id: `${runId}#start`,
      runId,
      type: 'run-start',
      time: startedAt,
      source: { format: FORMAT, file: resultFile, position: '(root)' },
      data: start,
    };
    yield eventItem(startEvent);
  }

  const verifierFinished = toIsoTime(result?.verifier?.finished_at);
  if (reward !== undefined || tests !== undefined) {
    const ctrfFile = join(directory, 'verifier', 'ctrf.json');
    const verifyEvent: RunVerified = {
      id: `${runId}#verify`,
      runId,
      type: 'run-verify',
      time: verifierFinished,
      source:
        tests !== undefined
          ? { format: FORMAT, file: ctrfFile, position: 'results.tests' }
          : { format: FORMAT, file: resultFile, position: 'verifier_result' },
      data: { reward, tests: tests ?? [] },
    };
    yield eventItem(verifyEvent);
  }

  const agentResult = result?.agent_result;
  const endedAt = toIsoTime(result?.finished_at) ?? totals?.endedAt;
  const endEvent: RunEnded = {
    id: `${runId}#end`,
    runId,
    type: 'run-end',
    time: endedAt,
    source: { format: FORMAT, file: resultFile, position: '(root)' },
    data: {
      ...decideOutcome({ reward, exceptionType: exception?.type, tests: tests ?? [] }),
      reward,
      promptTokens: toCount(agentResult?.n_input_tokens) ?? totals?.promptTokens,
      completionTokens: toCount(agentResult?.n_output_tokens) ?? totals?.completionTokens,
      costUsd: toMoney(agentResult?.cost_usd) ?? totals?.costUsd,
      startedAt: startedAt ?? totals?.startedAt,
      endedAt,
    },
  };
  yield eventItem(endEvent);
}

function runStartData(
  directory: string,
  result: TrialResult | undefined,
  job: JobConfig | undefined,
  exception: { type: string; message?: string } | undefined,
  rewards: Record<string, number> | undefined,
): RunStarted['data'] {
  const modelInfo = result?.agent_info?.model_info;
  const infoModel = modelInfo?.name
    ? modelInfo.provider
      ? `${modelInfo.provider}/${modelInfo.name}`
      : modelInfo.name
    : undefined;
  const taskPath = result?.config?.task?.path ?? result?.task_id?.path ?? undefined;
  const timings = Object.fromEntries(
    (['environment_setup', 'agent_setup', 'agent_execution', 'verifier'] as const).flatMap((phase) => {
      const timing = result?.[phase];
      return timing
        ? [[phase, { startedAt: timing.started_at ?? undefined, finishedAt: timing.finished_at ?? undefined }]]
        : [];
    }),
  );
  const metadata = definedOnly({
    trialId: result?.id,
    jobId: result?.config?.job_id,
    jobName: job?.job_name,
    trialUri: result?.trial_uri,
    taskPath,
    taskChecksum: result?.task_checksum,
    modelProvider: modelInfo?.provider,
    cacheTokens: toCount(result?.agent_result?.n_cache_tokens),
    agentMetadata: result?.agent_result?.metadata,
    rewards: rewards && Object.keys(rewards).length > 1 ? rewards : undefined,
    exception,
    timings: Object.keys(timings).length > 0 ? timings : undefined,
  });
  return definedOnly({
    task: result?.task_name || (taskPath ? basename(taskPath) : undefined) || taskFromTrialName(basename(directory)),
    dataset: result?.source ?? result?.config?.task?.source ?? datasetOfJob(job),
    model: result?.config?.agent?.model_name ?? infoModel,
    agent: result?.agent_info?.name,
    agentVersion: result?.agent_info?.version,
    trialName: result?.trial_name ?? basename(directory),
    metadata: Object.keys(metadata).length > 0 ? metadata : undefined,
  }) as RunStarted['data'];
}

/**
 * The other ATIF files in `agent/` (continuations of `trajectory.json`, sub-agents it points at) are read through it.
 * Without it they cannot be placed in the run, so each is rejected by name: nothing vanishes without a reason.
 */
function* rejectUnplacedTrajectories(agentFolder: string): Generator<ParseItem> {
  let names: string[];
  try {
    names = readdirSync(agentFolder).sort();
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.toLowerCase().endsWith('.json')) continue;
    const file = join(agentFolder, name);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    if (!/"schema_version"\s*:\s*"ATIF/.test(text)) continue;
    const reason =
      'agent/trajectory.json is missing, and this trajectory continues it or is one of its sub-agents, so it cannot be placed in the run; restore trajectory.json and import the trial again';
    yield rejectItem(FORMAT, file, '(root)', reason, text);
  }
}

async function* readTrialResult(file: string): AsyncGenerator<ParseItem, TrialResult | undefined> {
  if (!existsSync(file)) return undefined;
  const read = await readJsonFile(FORMAT, file);
  if ('reject' in read) {
    yield read.reject;
    return undefined;
  }
  const parsed = TrialResult.safeParse(read.value);
  if (!parsed.success) {
    const reason = `result.json does not match Harbor's TrialResult: ${describeSchemaError(parsed.error)}`;
    yield rejectItem(FORMAT, file, '(root)', reason, read.text);
    return undefined;
  }
  return parsed.data;
}

/** The job's config.json, when the trial sits in a Harbor job directory; anything else there is not ours to judge. */
async function readJobConfig(jobDirectory: string): Promise<JobConfig | undefined> {
  const file = join(jobDirectory, 'config.json');
  if (!existsSync(file)) return undefined;
  const read = await readJsonFile(FORMAT, file);
  if ('reject' in read || typeof read.value !== 'object' || read.value === null || 'trial_name' in read.value)
    return undefined;
  const parsed = JobConfig.safeParse(read.value);
  return parsed.success ? parsed.data : undefined;
}

function datasetOfJob(job: JobConfig | undefined): string | undefined {
  const datasets = job?.datasets ?? [];
  if (datasets.length !== 1) return undefined;
  const dataset = datasets[0];
  const name = dataset?.name ?? (dataset?.path ? basename(dataset.path) : undefined);
  if (!name) return undefined;
  return dataset?.version ? `${name}@${dataset.version}` : name;
}

/** The rewards from result.json, else from `verifier/reward.txt` (one number) or `verifier/reward.json`. */
async function* readRewards(
  directory: string,
  result: TrialResult | undefined,
): AsyncGenerator<ParseItem, Record<string, number> | undefined> {
  const recorded = numbersOnly(result?.verifier_result?.rewards);
  if (recorded) return recorded;
  const textFile = join(directory, 'verifier', 'reward.txt');
  if (existsSync(textFile)) {
    const text = readFileSync(textFile, 'utf8').trim();
    const reward = Number(text);
    if (text !== '' && Number.isFinite(reward)) return { reward };
    yield rejectItem(
      FORMAT,
      textFile,
      '(file)',
      `reward.txt should hold one number, found "${text.slice(0, 80)}"`,
      text,
    );
  }
  const jsonFile = join(directory, 'verifier', 'reward.json');
  if (existsSync(jsonFile)) {
    const read = await readJsonFile(FORMAT, jsonFile);
    if ('reject' in read) {
      yield read.reject;
      return undefined;
    }
    const rewards = typeof read.value === 'number' ? { reward: read.value } : numbersOnly(read.value);
    if (rewards) return rewards;
    yield rejectItem(
      FORMAT,
      jsonFile,
      '(root)',
      'reward.json should be an object of numbers, e.g. {"reward": 1.0}',
      read.text,
    );
  }
  return undefined;
}

/**
 * Reads the verifier's CTRF report. Durations are seconds when the report's clock is in epoch seconds (pytest's
 * CTRF plugin writes them so), otherwise milliseconds as CTRF specifies. Undefined when there is no report.
 */
async function* readCtrf(file: string): AsyncGenerator<ParseItem, TestResult[] | undefined> {
  if (!existsSync(file)) return undefined;
  const read = await readJsonFile(FORMAT, file);
  if ('reject' in read) {
    yield read.reject;
    return undefined;
  }
  const report = CtrfReport.safeParse(read.value);
  if (!report.success) {
    yield rejectItem(FORMAT, file, '(root)', `not a CTRF report: ${describeSchemaError(report.error)}`, read.text);
    return undefined;
  }
  const { tool, summary, tests } = report.data.results;
  const start = summary?.start;
  const inSeconds = (typeof start === 'number' && start < 1e11) || tool?.name === 'pytest';
  const results: TestResult[] = [];
  for (const [index, raw] of tests.entries()) {
    const test = CtrfTest.safeParse(raw);
    if (!test.success) {
      const reason = `test does not match CTRF: ${describeSchemaError(test.error)}`;
      yield rejectItem(FORMAT, file, `results.tests[${index}]`, reason, stringifyRaw(raw));
      continue;
    }
    const { name, status, duration, message, trace } = test.data;
    const durationMs =
      typeof duration === 'number' && duration >= 0 ? (inSeconds ? duration * 1000 : duration) : undefined;
    results.push(
      definedOnly({ name, status: testStatus(status), message: message ?? trace, durationMs }) as TestResult,
    );
  }
  return results;
}

function testStatus(status: string): TestResult['status'] {
  if (status === 'passed' || status === 'failed' || status === 'skipped') return status;
  if (status === 'pending') return 'skipped';
  return 'other';
}

/** The exception type from a Python traceback's last line, `harbor.trial.errors.AgentTimeoutError: ...`. */
function readExceptionFile(file: string): { type: string; message?: string } | undefined {
  if (!existsSync(file)) return undefined;
  const lines = readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const last = lines.at(-1);
  if (last === undefined) return undefined;
  const match = /^([A-Za-z_][\w.]*)(?::\s*(.*))?$/.exec(last);
  if (!match?.[1]) return { type: 'UnknownException', message: last };
  return { type: match[1].split('.').at(-1) ?? match[1], message: match[2] || undefined };
}

/** A job's result.json has no task or trial name; a trial's does. Reads at most a few MiB. */
function isTrialResult(file: string): boolean {
  try {
    if (statSync(file).size > MAX_SNIFFED_RESULT_BYTES) return false;
    const value: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return typeof value === 'object' && value !== null && ('trial_name' in value || 'task_name' in value);
  } catch {
    return false;
  }
}

/** Harbor names trials `<task>__<suffix>`. */
function taskFromTrialName(name: string): string {
  return name.split('__')[0] || name;
}

function numbersOnly(value: unknown): Record<string, number> | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const entries = Object.entries(value).filter(
    (entry): entry is [string, number] => typeof entry[1] === 'number' && Number.isFinite(entry[1]),
  );
  return entries.length > 0 ? Object.fromEntries(entries) : undefined;
}

function definedOnly<T extends Record<string, unknown>>(record: T): { [K in keyof T]: Exclude<T[K], null> } {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined && value !== null)) as {
    [K in keyof T]: Exclude<T[K], null>;
  };
}
