import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeSchemaError, type EventLog, SystemError, type TestResult, TraceEvent } from '../core/index.js';
import type { CommandResult, TrialAgent, TrialOutcome } from '../harness/index.js';
import { openSandbox, type Sandbox, SandboxError, type TrialSandbox } from './sandbox.js';
import { SUITE_DATASET, type Task } from './suite.js';

/**
 * Runs trials: each task × attempt in its own sandbox (setup, agent, verifier), with every step appended to the log
 * as it happens. A trial ends `passed` (reward 1), `failed` (the agent's fault, with a reason) or `invalid` (the
 * infrastructure failed: setup, sandbox, verifier), which is never counted as an agent failure. An interrupted trial
 * gets no `run-end` at all, so the log shows it as unfinished and no rate counts it.
 */

export type TrialOutcomeName = 'passed' | 'failed' | 'invalid' | 'unfinished';

export interface TrialResult {
  readonly runId: string;
  readonly task: string;
  readonly split?: string;
  readonly attempt: number;
  readonly seed: number;
  readonly outcome: TrialOutcomeName;
  readonly reward?: number;
  readonly failureReason?: string;
  /** More about an invalid trial (the setup's or verifier's last output), for the person running it. */
  readonly detail?: string;
  readonly durationMs: number;
}

export interface TrialProgress {
  readonly total: number;
  readonly done: number;
  readonly running: number;
  readonly passed: number;
  readonly failed: number;
  readonly invalid: number;
  /** The trial that just ended, if one did. */
  readonly finished?: TrialResult;
}

export interface RunTrialsOptions {
  readonly log: EventLog;
  readonly tasks: readonly Task[];
  readonly agent: TrialAgent;
  readonly attempts?: number;
  readonly concurrency?: number;
  readonly seed?: number;
  /** Makes run ids unique per batch; by default a fresh random one, so that repeated batches never collide. */
  readonly batchId?: string;
  /** Where trials run; by default bubblewrap (an error when it is missing). */
  readonly sandbox?: Sandbox;
  /** Aborting it stops the batch: running trials are killed and stay unfinished, no new one starts. */
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: TrialProgress) => void;
}

export interface RunTrialsResult {
  readonly batchId: string;
  readonly results: readonly TrialResult[];
  readonly interrupted: boolean;
}

const SCRIPT_OUTPUT_LIMIT = 64 * 1024;
/** How long an agent gets to return after its time ran out or the batch was interrupted. */
const AGENT_GRACE_MS = 5000;

function hash(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

/**
 * The id of one trial: the same inputs give the same id (so a trial is identifiable across its events), and the
 * batch id keeps repeated batches apart.
 */
export function trialRunId(input: {
  batchId: string;
  task: string;
  model: string;
  harnessVersion?: string;
  attempt: number;
  seed: number;
}): string {
  const digest = hash([input.batchId, input.task, input.model, input.harnessVersion ?? '', input.attempt, input.seed]);
  return `${input.task}@${input.attempt}-${digest.slice(0, 12)}`;
}

/**
 * The seed of one trial, from the batch seed, the task and the attempt: the same for every model and harness version,
 * so that paired trials of two harness versions face the same draws.
 */
export function deriveTrialSeed(seed: number, task: string, attempt: number): number {
  return Number.parseInt(hash([seed, task, attempt]).slice(0, 8), 16) & 0x7fffffff;
}

/** A new batch id: time-ordered and random, so ids of separate batches never collide. */
export function createBatchId(): string {
  return `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/**
 * The log's single writer. Appends happen one at a time, in the order they were asked for; events that arrive while
 * an append is in progress go together into the next one (one transaction), so trials running side by side and
 * agents emitting step after step do not wait for each other's writes.
 */
export interface Appender {
  /** Queues events; the promise settles when they are stored. */
  append(events: readonly TraceEvent[]): Promise<void>;
  /** Settles when everything queued so far is stored. */
  drain(): Promise<void>;
}

export function createAppender(log: EventLog): Appender {
  let pending: { events: readonly TraceEvent[]; resolve: () => void; reject: (error: unknown) => void }[] = [];
  let writing: Promise<void> | undefined;
  const flush = async () => {
    while (pending.length > 0) {
      const batch = pending;
      pending = [];
      try {
        const events = batch.flatMap((entry) => entry.events);
        // A trial's steps are written as they happen; its run is derived when it starts (so that readers see it, as
        // unfinished, even if the runner is killed) and again when it ends, not at every step.
        const isBoundary = events.some((event) => event.type === 'run-start' || event.type === 'run-end');
        await log.appendEvents(events, [], { deferProjections: !isBoundary });
        for (const entry of batch) entry.resolve();
      } catch (error) {
        for (const entry of batch) entry.reject(error);
      }
    }
    writing = undefined;
  };
  return {
    append: (events) =>
      new Promise<void>((resolve, reject) => {
        pending.push({ events, resolve, reject });
        writing ??= flush();
      }),
    drain: async () => {
      while (writing) await writing;
    },
  };
}

export async function runTrials(options: RunTrialsOptions): Promise<RunTrialsResult> {
  const attempts = options.attempts ?? 1;
  const concurrency = Math.max(1, options.concurrency ?? 1);
  const seed = options.seed ?? 0;
  const batchId = options.batchId ?? createBatchId();
  const sandbox = options.sandbox ?? (await openSandbox());
  const appender = createAppender(options.log);
  const queue: { task: Task; attempt: number }[] = [];
  for (let attempt = 1; attempt <= attempts; attempt++) {
    for (const task of options.tasks) queue.push({ task, attempt });
  }
  const total = queue.length;
  const results: TrialResult[] = [];
  const counts = { passed: 0, failed: 0, invalid: 0 };
  let running = 0;
  const report = (finished?: TrialResult) =>
    options.onProgress?.({ total, done: results.length, running, ...counts, finished });

  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      if (options.signal?.aborted) return;
      running++;
      report();
      const result = await runTrial({
        ...next,
        agent: options.agent,
        sandbox,
        appender,
        seed,
        batchId,
        signal: options.signal,
      });
      running--;
      results.push(result);
      if (result.outcome !== 'unfinished') counts[result.outcome]++;
      report(result);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  } finally {
    // What interrupted trials logged is still written, so that the log shows them as unfinished.
    await appender.drain();
    // Steps were appended with their projections deferred; bring `runs`, `steps`, … up to date for the caller.
    await options.log.projectPending();
  }
  return { batchId, results, interrupted: options.signal?.aborted === true };
}

interface TrialInput {
  readonly task: Task;
  readonly attempt: number;
  readonly agent: TrialAgent;
  readonly sandbox: Sandbox;
  readonly appender: Appender;
  readonly seed: number;
  readonly batchId: string;
  readonly signal?: AbortSignal;
}

async function runTrial(input: TrialInput): Promise<TrialResult> {
  const { task, attempt, agent } = input;
  const started = new Date();
  const seed = deriveTrialSeed(input.seed, task.id, attempt);
  const runId = trialRunId({
    batchId: input.batchId,
    task: task.id,
    model: agent.model,
    harnessVersion: agent.harnessVersion,
    attempt,
    seed: input.seed,
  });
  const base = { runId, task: task.id, split: task.split, attempt, seed };
  const elapsed = () => Date.now() - started.getTime();
  // Events are queued as they happen and written while the trial goes on; the trial's end waits for all of them, and
  // a failed write fails the batch (the log must not silently miss events).
  let writeError: unknown;
  const record = (events: readonly TraceEvent[]) => {
    input.appender.append(events).catch((error: unknown) => {
      writeError ??= error;
    });
  };
  // The start is written while the setup runs, and stored before the agent starts: a trial killed from then on shows
  // in the log as unfinished.
  const startStored = input.appender.append([
    {
      id: `${runId}#start`,
      runId,
      type: 'run-start',
      time: started.toISOString(),
      data: {
        task: task.id,
        dataset: SUITE_DATASET,
        model: agent.model,
        ...(agent.harnessVersion ? { harnessVersion: agent.harnessVersion } : {}),
        attempt,
        ...(task.split ? { split: task.split } : {}),
        seed,
        instruction: task.instruction,
        metadata: {
          batchId: input.batchId,
          batchSeed: input.seed,
          category: task.category,
          difficulty: task.difficulty,
        },
      },
    },
  ]);
  startStored.catch((error: unknown) => {
    writeError ??= error;
  });
  const end = async (
    outcome: 'passed' | 'failed' | 'invalid',
    fields: { reward?: number; failureReason?: string; detail?: string; agentOutcome?: TrialOutcome },
    before: readonly TraceEvent[] = [],
  ): Promise<TrialResult> => {
    const endedAt = new Date();
    if (writeError) throw new SystemError('Could not append to the log.', { cause: writeError });
    await input.appender.append([...before, runEndEvent(runId, outcome, fields, started, endedAt)]);
    return {
      ...base,
      outcome,
      reward: fields.reward,
      failureReason: fields.failureReason,
      detail: fields.detail,
      durationMs: elapsed(),
    };
  };
  const unfinished = (): TrialResult => ({ ...base, outcome: 'unfinished', durationMs: elapsed() });

  if (input.signal?.aborted) return unfinished();
  let trial: TrialSandbox;
  try {
    trial = input.sandbox.createTrial();
  } catch (error) {
    return end('invalid', { failureReason: 'sandbox_error', detail: (error as Error).message });
  }
  const stopOnInterrupt = () => void trial.stop();
  input.signal?.addEventListener('abort', stopOnInterrupt);
  try {
    // Setup.
    if (task.environmentFolder) {
      let setup: CommandResult;
      try {
        setup = await trial.runSetup(task.environmentFolder, {
          timeoutMs: Math.max(60, task.verifierTimeoutSec) * 1000,
          maxOutputBytes: SCRIPT_OUTPUT_LIMIT,
        });
      } catch (error) {
        if (input.signal?.aborted) return unfinished();
        return end('invalid', { failureReason: 'sandbox_error', detail: (error as Error).message });
      }
      if (input.signal?.aborted) return unfinished();
      if (setup.exitCode !== 0) {
        return end('invalid', {
          failureReason: 'setup_failed',
          detail: `${task.id}/environment/setup.sh ${setup.timedOut ? 'timed out' : `exited with ${setup.exitCode}`}: ${lastLines(setup.output)}`,
        });
      }
    }

    try {
      await startStored;
    } catch (error) {
      throw new SystemError('Could not append to the log.', { cause: error });
    }

    // The agent.
    const controller = new AbortController();
    let agentTimedOut = false;
    const timer = setTimeout(() => {
      agentTimedOut = true;
      controller.abort(new Error(`The agent's time (${task.agentTimeoutSec} s) ran out.`));
      void trial.workspace.stop();
    }, task.agentTimeoutSec * 1000);
    const forwardInterrupt = () => controller.abort(new Error('The run was interrupted.'));
    input.signal?.addEventListener('abort', forwardInterrupt);
    let agentOutcome: TrialOutcome | undefined;
    let agentError: unknown;
    try {
      agentOutcome = await untilAbortedAndGrace(
        agent.solve({
          runId,
          task,
          workspace: trial.workspace,
          seed,
          signal: controller.signal,
          emit: async (events) => {
            if (writeError) throw new SystemError('Could not append to the log.', { cause: writeError });
            record(checkAgentEvents(events, runId));
          },
        }),
        controller.signal,
      );
    } catch (error) {
      agentError = error;
    } finally {
      clearTimeout(timer);
      input.signal?.removeEventListener('abort', forwardInterrupt);
    }
    if (input.signal?.aborted) return unfinished();
    if (agentError !== undefined && !agentTimedOut) {
      const message = agentError instanceof Error ? agentError.message : String(agentError);
      return end('invalid', {
        failureReason: agentError instanceof SandboxError ? 'sandbox_error' : 'agent_error',
        detail: message,
      });
    }
    await trial.workspace.stop();
    const modelFailed = modelFailure(agentOutcome);
    if (modelFailed) return end('invalid', { ...modelFailed, agentOutcome });

    // The verifier, in a fresh sandbox on the same workspace.
    let verification: { result: CommandResult; logsFolder: string };
    try {
      verification = await trial.runVerifier(task.testsFolder, {
        timeoutMs: task.verifierTimeoutSec * 1000,
        maxOutputBytes: SCRIPT_OUTPUT_LIMIT,
      });
    } catch (error) {
      if (input.signal?.aborted) return unfinished();
      return end('invalid', { failureReason: 'sandbox_error', detail: (error as Error).message, agentOutcome });
    }
    if (input.signal?.aborted) return unfinished();
    if (verification.result.timedOut) {
      return end('invalid', {
        failureReason: 'verifier_timeout',
        detail: `${task.id}/tests/test.sh ran past ${task.verifierTimeoutSec} s`,
        agentOutcome,
      });
    }
    const verdict = readVerdict(verification.logsFolder);
    if (verdict.reward === undefined) {
      return end('invalid', {
        failureReason: 'verifier_crashed',
        detail: `${task.id}/tests/test.sh (exit ${verification.result.exitCode}) ${verdict.problem}: ${lastLines(verification.result.output)}`,
        agentOutcome,
      });
    }
    const verified = runVerifyEvent(runId, verdict.reward, verdict.tests);
    if (verdict.reward === 1) return end('passed', { reward: 1, agentOutcome }, [verified]);
    const failureReason = agentTimedOut
      ? 'agent_timeout'
      : agentOutcome && !agentOutcome.finished
        ? (agentOutcome.stopReason ?? 'not_finished')
        : 'tests_failed';
    return end('failed', { reward: verdict.reward, failureReason, agentOutcome }, [verified]);
  } finally {
    input.signal?.removeEventListener('abort', stopOnInterrupt);
    await trial.dispose();
  }
}

/** Waits for the agent; once the signal aborts, waits at most a short grace period more, then gives up on it. */
async function untilAbortedAndGrace(work: Promise<TrialOutcome>, signal: AbortSignal): Promise<TrialOutcome> {
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<TrialOutcome>((resolve) => {
    const start = () => {
      timer = setTimeout(() => resolve({ finished: false, stopReason: 'wall_time' }), AGENT_GRACE_MS);
    };
    if (signal.aborted) start();
    else signal.addEventListener('abort', start, { once: true });
  });
  try {
    return await Promise.race([work, gaveUp]);
  } finally {
    clearTimeout(timer);
  }
}

/** Validates what an agent emits: well-formed events of its own run, so that a buggy agent cannot corrupt the log. */
function checkAgentEvents(events: readonly TraceEvent[], runId: string): TraceEvent[] {
  return events.map((event, index) => {
    const parsed = TraceEvent.safeParse(event);
    if (!parsed.success) {
      throw new SystemError(
        `The agent emitted an invalid event (#${index} of its batch): ${describeSchemaError(parsed.error)}`,
      );
    }
    if (parsed.data.runId !== runId) {
      throw new SystemError(`The agent emitted an event for run ${parsed.data.runId} while running ${runId}.`);
    }
    return parsed.data;
  });
}

/** Reads `verifier/reward.txt` and `verifier/ctrf.json`; a missing or unreadable reward means the verifier failed. */
export function readVerdict(logsFolder: string): { reward?: number; tests: TestResult[]; problem?: string } {
  const rewardPath = join(logsFolder, 'verifier', 'reward.txt');
  if (!existsSync(rewardPath)) return { tests: [], problem: 'wrote no verifier/reward.txt' };
  const text = readFileSync(rewardPath, 'utf8').trim();
  const reward = Number(text);
  if (text === '' || !Number.isFinite(reward))
    return { tests: [], problem: `wrote a reward that is no number: "${text.slice(0, 40)}"` };
  return { reward, tests: readCtrf(join(logsFolder, 'verifier', 'ctrf.json')) };
}

const STATUSES = new Set(['passed', 'failed', 'skipped', 'other']);

/** The per-test results of a CTRF report; an absent or malformed report gives none (the reward still counts). */
function readCtrf(path: string): TestResult[] {
  if (!existsSync(path)) return [];
  try {
    const report = JSON.parse(readFileSync(path, 'utf8')) as { results?: { tests?: unknown[] } };
    return (report.results?.tests ?? []).flatMap((test) => {
      const entry = test as Record<string, unknown>;
      if (typeof entry.name !== 'string' || entry.name === '') return [];
      const status = typeof entry.status === 'string' && STATUSES.has(entry.status) ? entry.status : 'other';
      return [
        {
          name: entry.name,
          status: status as TestResult['status'],
          ...(typeof entry.message === 'string' && entry.message !== '' ? { message: entry.message } : {}),
          ...(typeof entry.duration === 'number' && entry.duration >= 0 ? { durationMs: entry.duration } : {}),
        },
      ];
    });
  } catch {
    return [];
  }
}

function lastLines(output: string, count = 3): string {
  return output.trim().split('\n').slice(-count).join(' | ').slice(0, 500);
}

/**
 * Why a trial (or a fork of one) counts nowhere when its model endpoint failed past its retries: there is no verdict
 * on the agent, so it ends `invalid` with `model_error`, never as an agent failure.
 */
export function modelFailure(
  outcome: TrialOutcome | undefined,
): { failureReason: 'model_error'; detail: string } | undefined {
  if (outcome?.stopReason !== 'model_error') return undefined;
  return { failureReason: 'model_error', detail: outcome.stopDetail ?? 'The model endpoint kept failing.' };
}

/** The `run-verify` event of a trial (or a fork of one): the verifier's reward and per-test results. */
export function runVerifyEvent(runId: string, reward: number, tests: readonly TestResult[]): TraceEvent {
  return {
    id: `${runId}#verify`,
    runId,
    type: 'run-verify',
    time: new Date().toISOString(),
    data: { reward, tests: [...tests] },
  };
}

/** The `run-end` event of a trial (or a fork of one): its outcome, reward, reason, the agent's usage and its times. */
export function runEndEvent(
  runId: string,
  outcome: 'passed' | 'failed' | 'invalid',
  fields: { reward?: number; failureReason?: string; agentOutcome?: TrialOutcome },
  started: Date,
  endedAt: Date,
): TraceEvent {
  const usage = fields.agentOutcome;
  return {
    id: `${runId}#end`,
    runId,
    type: 'run-end',
    time: endedAt.toISOString(),
    data: {
      outcome,
      ...(fields.reward === undefined ? {} : { reward: fields.reward }),
      ...(fields.failureReason ? { failureReason: fields.failureReason } : {}),
      ...(usage?.promptTokens === undefined ? {} : { promptTokens: usage.promptTokens }),
      ...(usage?.completionTokens === undefined ? {} : { completionTokens: usage.completionTokens }),
      ...(usage?.costUsd === undefined ? {} : { costUsd: usage.costUsd }),
      startedAt: started.toISOString(),
      endedAt: endedAt.toISOString(),
    },
  };
}
