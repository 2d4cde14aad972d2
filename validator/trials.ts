import type { EventLog } from '../core/index.js';
import { UserError } from '../core/index.js';
import { type CreateAgentOptions, createAgent, type TrialAgent } from '../harness/index.js';
import {
  createBatchId,
  deriveTrialSeed,
  runTrials,
  type Sandbox,
  type Task,
  type TrialProgress,
} from '../tasks/index.js';
import { type GateSplit, pairTrials, type TrialPair, type TrialRecord } from './gate.js';

/**
 * Fresh trials of harness versions inside an improve job, resumable from the log. A trial is identified by
 * (job id, harness version, task, attempt, seed): the job id, attempt and seed travel in the batch id that the runner
 * stores with each run (`trial:<job>:<attempt>:<seed>:<random>`), the version and task are columns of the run. Before
 * anything runs, the log says which trials are finished (a run with a `run-end`); only the others run. A run killed
 * before its end stays `unfinished`, is never counted, and its trial runs again under a new run id. Invalid trials (the
 * infrastructure failed) are no verdict on the harness: they run again, a bounded number of times.
 *
 * Each attempt runs as its own batch of the runner (one attempt per task), so that any subset of (task, attempt) can
 * run without repeating a finished one; the runner therefore logs `attempt = 1` and the attempt of the job is the one
 * in the batch id. Its batch seed is derived from the job seed and the attempt, the same for every version, so paired
 * trials of two versions face the same draws.
 */

/** Which trials of one version: tasks (with their split), attempts per task, and the job's seed. */
export interface TrialSet {
  readonly jobId: string;
  readonly model: string;
  readonly versionId: string;
  readonly tasks: readonly Task[];
  readonly attempts: number;
  readonly seed: number;
}

/** One trial's final result: its key and its verdict (`invalid` only when every retry was invalid too). */
export interface JobTrial {
  readonly task: string;
  readonly split: string;
  readonly attempt: number;
  readonly seed: number;
  readonly versionId: string;
  readonly outcome: 'passed' | 'failed' | 'invalid';
  /** The run that decided it. */
  readonly runId: string;
  /** Runs of this trial with an end (valid or invalid). */
  readonly runs: number;
}

export interface TrialRunOptions {
  readonly concurrency?: number;
  /** How often an invalid trial runs again before it counts as invalid (default 2). */
  readonly maxInvalidRetries?: number;
  readonly sandbox?: Sandbox;
  readonly signal?: AbortSignal;
  /** Where `openai:MODEL` reads its endpoint settings (default: `process.env`). */
  readonly environment?: CreateAgentOptions['environment'];
  /** Builds the agent of a version; by default `createAgent` with the set's model. */
  readonly agentFor?: (versionId: string) => Promise<TrialAgent>;
  readonly onProgress?: (progress: TrialSetProgress) => void;
}

export interface TrialSetProgress extends TrialProgress {
  readonly versionId: string;
  /** Trials of the set already finished in the log before this call. */
  readonly reused: number;
}

export interface TrialSetResult {
  readonly trials: readonly JobTrial[];
  /** Runs started by this call. */
  readonly ran: number;
  /** Trials found finished in the log. */
  readonly reused: number;
}

const JOB_ID_PATTERN = /^[A-Za-z0-9._-]{1,80}$/;

/** Checks a job id: it travels inside batch ids, so it holds letters, digits, `.`, `_` and `-` only. */
export function checkJobId(jobId: string): string {
  if (!JOB_ID_PATTERN.test(jobId))
    throw new UserError(
      `Job id ${JSON.stringify(jobId)} is not valid: use 1 to 80 letters, digits, '.', '_' or '-' (e.g. improve-late-artifacts-1).`,
    );
  return jobId;
}

/** The runner's batch seed for one attempt of a job: derived from the job seed, the same for every version. */
export function attemptBatchSeed(seed: number, attempt: number): number {
  return attempt === 1 ? seed : deriveTrialSeed(seed, '#attempt', attempt);
}

/** The batch id of one attempt's batch, read back by `readJobTrialRuns`. */
export function trialBatchId(jobId: string, attempt: number, seed: number): string {
  return `trial:${jobId}:${attempt}:${seed}:${createBatchId()}`;
}

const BATCH_PATTERN = /^trial:([A-Za-z0-9._-]+):(\d+):(-?\d+):/;

/** A logged run of a job's trial, with its key read from the batch id. */
export interface JobTrialRun {
  readonly runId: string;
  readonly task: string;
  readonly split?: string;
  readonly model?: string;
  readonly versionId?: string;
  readonly attempt: number;
  readonly seed: number;
  readonly outcome: string;
  readonly seq: number;
}

const JOB_RUNS = `
SELECT runs.run_id, runs.task, runs.split, runs.model, runs.harness_version, runs.outcome, runs.first_seq,
       start.data->'metadata'->>'batchId' AS batch_id
FROM events start JOIN runs ON runs.run_id = start.run_id
WHERE start.type = 'run-start' AND starts_with(start.data->'metadata'->>'batchId', $1)
ORDER BY runs.first_seq`;

interface JobRunRow extends Record<string, unknown> {
  run_id: string;
  task: string;
  split: string | null;
  model: string | null;
  harness_version: string | null;
  outcome: string;
  first_seq: bigint;
  batch_id: string;
}

/** Every run the job's trials logged, finished or not, oldest first. */
export async function readJobTrialRuns(log: EventLog, jobId: string): Promise<JobTrialRun[]> {
  const rows = await log.query<JobRunRow>(JOB_RUNS, [`trial:${checkJobId(jobId)}:`]);
  return rows.flatMap((row) => {
    const match = BATCH_PATTERN.exec(row.batch_id);
    if (!match || match[1] !== jobId) return [];
    return [
      {
        runId: row.run_id,
        task: row.task,
        ...(row.split !== null ? { split: row.split } : {}),
        ...(row.model !== null ? { model: row.model } : {}),
        ...(row.harness_version !== null ? { versionId: row.harness_version } : {}),
        attempt: Number(match[2]),
        seed: Number(match[3]),
        outcome: row.outcome,
        seq: Number(row.first_seq),
      },
    ];
  });
}

/** The key of one trial inside a job. */
export const trialKey = (trial: { versionId?: string; task: string; attempt: number; seed: number }) =>
  `${trial.versionId ?? ''}\u0000${trial.task}\u0000${trial.attempt}\u0000${trial.seed}`;

/**
 * What the log says about a set of trials: the finished ones (a valid run, or more invalid runs than retries allow)
 * and those still to run, per attempt. Pure.
 */
export function planTrialSet(
  set: TrialSet,
  runs: readonly JobTrialRun[],
  maxInvalidRetries: number,
): { finished: JobTrial[]; missing: { task: Task; attempt: number }[] } {
  const byKey = new Map<string, JobTrialRun[]>();
  for (const run of runs) {
    if (run.model !== set.model) continue;
    const key = trialKey(run);
    byKey.set(key, [...(byKey.get(key) ?? []), run]);
  }
  const finished: JobTrial[] = [];
  const missing: { task: Task; attempt: number }[] = [];
  for (let attempt = 1; attempt <= set.attempts; attempt++) {
    for (const task of set.tasks) {
      const key = trialKey({ versionId: set.versionId, task: task.id, attempt, seed: set.seed });
      const ended = (byKey.get(key) ?? []).filter((run) => ['passed', 'failed', 'invalid'].includes(run.outcome));
      const valid = ended.find((run) => run.outcome === 'passed' || run.outcome === 'failed');
      const base = { task: task.id, split: task.split ?? 'unsplit', attempt, seed: set.seed, versionId: set.versionId };
      if (valid)
        finished.push({
          ...base,
          outcome: valid.outcome as 'passed' | 'failed',
          runId: valid.runId,
          runs: ended.length,
        });
      else if (ended.length > maxInvalidRetries)
        finished.push({ ...base, outcome: 'invalid', runId: ended.at(-1)!.runId, runs: ended.length });
      else missing.push({ task, attempt });
    }
  }
  return { finished, missing };
}

/**
 * Runs the trials of a set that the log does not hold finished yet, retrying invalid ones, and returns every trial of
 * the set. Calling it again after it returned runs nothing; after a crash it runs only what did not finish.
 */
export async function runTrialSet(
  log: EventLog,
  set: TrialSet,
  options: TrialRunOptions = {},
): Promise<TrialSetResult> {
  checkJobId(set.jobId);
  const maxInvalidRetries = options.maxInvalidRetries ?? 2;
  let ran = 0;
  let reused: number | undefined;
  let agent: TrialAgent | undefined;
  for (let round = 0; ; round++) {
    const plan = planTrialSet(set, await readJobTrialRuns(log, set.jobId), maxInvalidRetries);
    reused ??= plan.finished.length;
    if (plan.missing.length === 0) return { trials: plan.finished, ran, reused };
    if (round > maxInvalidRetries)
      throw new UserError(
        `Trials of harness ${set.versionId} did not finish after ${round} rounds (${plan.missing.length} left): see the runs of batch trial:${set.jobId} in the log.`,
      );
    agent ??= options.agentFor
      ? await options.agentFor(set.versionId)
      : await createAgent({
          model: set.model,
          harness: set.versionId,
          log,
          ...(options.environment ? { environment: options.environment } : {}),
        });
    const done = { count: plan.finished.length };
    const total = set.tasks.length * set.attempts;
    for (let attempt = 1; attempt <= set.attempts; attempt++) {
      const tasks = plan.missing.filter((entry) => entry.attempt === attempt).map((entry) => entry.task);
      if (tasks.length === 0) continue;
      const result = await runTrials({
        log,
        tasks,
        agent,
        attempts: 1,
        concurrency: options.concurrency ?? 2,
        seed: attemptBatchSeed(set.seed, attempt),
        batchId: trialBatchId(set.jobId, attempt, set.seed),
        ...(options.sandbox ? { sandbox: options.sandbox } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        onProgress: (progress) => {
          if (progress.finished) done.count += 1;
          options.onProgress?.({
            ...progress,
            total,
            done: Math.min(total, done.count),
            versionId: set.versionId,
            reused: reused ?? 0,
          });
        },
      });
      ran += result.results.length;
      if (result.interrupted)
        throw new UserError(
          `Interrupted while running trials of harness ${set.versionId}: finished trials are in the log; run the same command again to continue.`,
        );
    }
  }
}

/** Base and candidate trials on the same tasks, attempts and seed, and their pairs for the gate. */
export interface PairedTrialsResult {
  readonly pairs: TrialPair[];
  readonly base: readonly JobTrial[];
  readonly candidate: readonly JobTrial[];
  /** Runs started for either side. */
  readonly ran: number;
}

/**
 * Runs (or reads from the log) the trials of a base and a candidate version on the same held-in and held-out tasks,
 * attempts and seed, and pairs them on (task, attempt, seed). Tasks of other splits are refused: the gate judges
 * held-in and held-out only. The base's trials are shared by every candidate of the same base in the job.
 */
export async function runPairedTrials(
  log: EventLog,
  input: Omit<TrialSet, 'versionId'> & { readonly baseVersionId: string; readonly candidateVersionId: string },
  options: TrialRunOptions = {},
): Promise<PairedTrialsResult> {
  for (const task of input.tasks)
    if (task.split !== 'held-in' && task.split !== 'held-out')
      throw new UserError(
        `Task ${task.id} is in split ${task.split ?? '(none)'}: paired trials for the gate use held-in and held-out tasks only.`,
      );
  const { baseVersionId, candidateVersionId, ...shared } = input;
  const base = await runTrialSet(log, { ...shared, versionId: baseVersionId }, options);
  const candidate = await runTrialSet(log, { ...shared, versionId: candidateVersionId }, options);
  const { pairs } = pairTrials(toRecords(base.trials), toRecords(candidate.trials));
  return { pairs, base: base.trials, candidate: candidate.trials, ran: base.ran + candidate.ran };
}

/** The gate's view of job trials. */
export function toRecords(trials: readonly JobTrial[]): TrialRecord[] {
  return trials.map((trial) => ({
    task: trial.task,
    attempt: trial.attempt,
    seed: trial.seed,
    split: trial.split as GateSplit,
    outcome: trial.outcome,
  }));
}

/** Pass rate (percent) of valid trials per split; `undefined` for a split without valid trials. */
export function passRates(
  trials: readonly JobTrial[],
): Record<string, { passed: number; valid: number; rate: number }> {
  const rates: Record<string, { passed: number; valid: number; rate: number }> = {};
  for (const trial of trials) {
    if (trial.outcome === 'invalid') continue;
    const entry = rates[trial.split] ?? { passed: 0, valid: 0, rate: 0 };
    entry.valid += 1;
    if (trial.outcome === 'passed') entry.passed += 1;
    entry.rate = (100 * entry.passed) / entry.valid;
    rates[trial.split] = entry;
  }
  return rates;
}
