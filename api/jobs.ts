import { randomUUID } from 'node:crypto';
import type { Context, Hono } from 'hono';
import { type SSEStreamingApi, streamSSE } from 'hono/streaming';
import { EventLog } from '../core/index.js';
import { findBubblewrap, openSandbox } from '../tasks/index.js';
import { type ImprovePhaseName, type ImproveResult, improve } from '../validator/improve.js';
import {
  IMPROVE_REQUEST_FIELDS,
  type ImproveRequest,
  type ImproveSettings,
  parseImproveRequest,
} from '../validator/improve-options.js';
import type { TrialSetProgress } from '../validator/index.js';
import { HttpProblem, toProblem } from './problem.js';
import { toJsonValue } from './queries.js';
import type { RouteRegistrar } from './routes.js';

/**
 * Improve jobs: the self-improvement loop run inside the server, watched over HTTP.
 *
 * A job runs `improve` on its own connection to the server's database (a long job never takes the turn of the
 * requests that share the server's connection), so the API keeps answering while it runs. The harness head is one per
 * database, so one improve job runs at a time per database. Jobs live in memory for the server's life; what a job
 * decided is in the log, and a job cancelled or lost with the server continues where it stopped when the same
 * `jobId` is posted again.
 */

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

/**
 * What a job is doing. `phase` is `queued`, a step of the loop (`starting`, `baseline`, `mining`, `proposing`,
 * `screening`, `gate`, `merge`, `result`, `sealed`, `final`) or `finished`. `done` counts the trials finished in this
 * job so far (read back from the log or run now) and never decreases; `total` is `done` plus the trials still to run in
 * the current trial set, so the two are equal between trial sets.
 */
export interface JobProgress {
  readonly phase: 'queued' | ImprovePhaseName | 'finished';
  readonly message: string;
  readonly done: number;
  readonly total: number;
}

/** An improve job as the API shows it; times are ISO 8601, `null` until they happen. */
export interface Job {
  readonly id: string;
  readonly kind: 'improve';
  readonly status: JobStatus;
  readonly createdAt: string;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  readonly options: ImproveSettings;
  readonly progress: JobProgress;
  /** The loop's result (what `selfharness improve --json` prints) once the job succeeded. */
  readonly result: ImproveResult | null;
  /** Why the job failed or how it was cancelled. */
  readonly error: string | null;
}

/** At most this many `progress` events a second per job. */
const EVENTS_PER_SECOND = 4;
/** A comment line this often keeps proxies from closing a quiet event stream. */
const KEEP_ALIVE_MS = 15_000;
/** How long `DELETE /v1/jobs/:id` waits for the job to stop before it answers 202 instead of 200. */
const CANCEL_WAIT_MS = 10_000;

/** The fields `POST /v1/improve` accepts. */
const BODY_FIELDS = new Set<string>(IMPROVE_REQUEST_FIELDS);

/** Trials finished in the job so far, folded from the trial sets' progress reports. */
export interface TrialTally {
  /** The trial set reporting now (its label and version). */
  readonly set: string | undefined;
  /** Trials finished in the trial sets before it. */
  readonly before: number;
  readonly setDone: number;
  readonly setTotal: number;
}

export const EMPTY_TALLY: TrialTally = { set: undefined, before: 0, setDone: 0, setTotal: 0 };

/**
 * Adds one progress report of a trial set to the tally. A report of another set closes the previous one; a set that
 * starts another round (invalid trials run again) never lowers its count. Pure.
 */
export function tallyTrials(
  tally: TrialTally,
  progress: Pick<TrialSetProgress, 'done' | 'total' | 'versionId'> & { readonly label: string },
): TrialTally {
  const set = `${progress.label}\u0000${progress.versionId}`;
  if (set !== tally.set)
    return { set, before: tally.before + tally.setDone, setDone: progress.done, setTotal: progress.total };
  return { ...tally, setDone: Math.max(tally.setDone, progress.done), setTotal: progress.total };
}

type Listener = (event: 'progress' | 'end', job: Job) => void;

/** One job: its state, the signal that cancels it, and the listeners of its event streams. */
class JobEntry {
  private state: Job;
  private tally: TrialTally = EMPTY_TALLY;
  private readonly listeners = new Set<Listener>();
  private timer: NodeJS.Timeout | undefined;
  private lastSentAt = 0;
  private resolveSettled!: () => void;
  readonly controller = new AbortController();
  /** Resolves when the job has finished, whatever its outcome. */
  readonly settled = new Promise<void>((resolve) => {
    this.resolveSettled = resolve;
  });

  constructor(options: ImproveSettings) {
    this.state = {
      id: `job-${randomUUID().slice(0, 8)}`,
      kind: 'improve',
      status: 'queued',
      createdAt: new Date().toISOString(),
      startedAt: null,
      finishedAt: null,
      options,
      progress: { phase: 'queued', message: 'Waiting to start.', done: 0, total: 0 },
      result: null,
      error: null,
    };
  }

  get job(): Job {
    return this.state;
  }

  get isFinished(): boolean {
    return this.state.finishedAt !== null;
  }

  start(): void {
    this.update({ status: 'running', startedAt: new Date().toISOString() });
  }

  phase(phase: ImprovePhaseName, message: string): void {
    this.update({ progress: { ...this.state.progress, phase, message } });
  }

  note(message: string): void {
    this.update({ progress: { ...this.state.progress, message } });
  }

  trials(progress: TrialSetProgress & { readonly label: string }): void {
    this.tally = tallyTrials(this.tally, progress);
    const done = this.tally.before + this.tally.setDone;
    const total = this.tally.before + this.tally.setTotal;
    const message = `${progress.label}: ${progress.done}/${progress.total} trials (${progress.passed} passed, ${progress.failed} failed, ${progress.invalid} invalid, ${progress.running} running${progress.reused > 0 ? `, ${progress.reused} from the log` : ''})`;
    this.update({ progress: { ...this.state.progress, message, done, total } });
  }

  /** Marks the job as finished and sends `end` to every stream at once. */
  finish(
    fields: Pick<Job, 'status' | 'result' | 'error'> & { readonly message: string; readonly phase?: 'finished' },
  ): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const { message, phase, ...rest } = fields;
    this.state = {
      ...this.state,
      ...rest,
      finishedAt: new Date().toISOString(),
      progress: { ...this.state.progress, phase: phase ?? this.state.progress.phase, message },
    };
    for (const listener of this.listeners) listener('end', this.state);
    this.listeners.clear();
    this.resolveSettled();
  }

  /** Listens to the job's events until its end; returns the function that stops listening. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A change: sent to the streams at once, or when the throttle next allows (the latest state only). */
  private update(fields: Partial<Job>): void {
    this.state = { ...this.state, ...fields };
    if (this.timer !== undefined) return;
    const wait = Math.max(0, this.lastSentAt + 1000 / EVENTS_PER_SECOND - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.lastSentAt = Date.now();
      for (const listener of this.listeners) listener('progress', this.state);
    }, wait);
  }
}

/** The job running on each database (by path), across every app of this process. */
const runningByDatabase = new Map<string, JobEntry>();

/**
 * Cancels the jobs running on a database (every database when no path is given) and resolves when they have stopped.
 * A server calls it before it closes its log, so that no job is left writing through a connection of its own.
 */
export async function cancelRunningJobs(path?: string): Promise<void> {
  const entries = [...runningByDatabase.entries()]
    .filter(([database]) => path === undefined || database === path)
    .map(([, entry]) => entry);
  for (const entry of entries) entry.controller.abort();
  await Promise.all(entries.map((entry) => entry.settled));
}

/**
 * Improve jobs: `POST /v1/improve`, `GET /v1/jobs`, `GET /v1/jobs/:id`, `GET /v1/jobs/:id/events` (server-sent events),
 * `DELETE /v1/jobs/:id`. The job list belongs to the app; the one-job-per-database rule holds across the process.
 */
export const registerJobRoutes: RouteRegistrar = (app: Hono, { log }) => {
  const jobs = new Map<string, JobEntry>();

  const find = (id: string): JobEntry => {
    const entry = jobs.get(id);
    if (!entry) throw new HttpProblem(404, 'Not Found', `Unknown job ${id}: list jobs with GET /v1/jobs.`);
    return entry;
  };

  app.post('/v1/improve', async (context) => {
    const request = await readImproveBody(context);
    const { options, settings } = await parseImproveRequest(request);
    const path = log.database.path;
    if (path === ':memory:')
      throw new HttpProblem(
        500,
        'Internal Server Error',
        'Improve jobs need a database file (they run on their own connection): start the server with --db PATH.',
      );
    if (findBubblewrap() === undefined)
      throw new HttpProblem(
        500,
        'Internal Server Error',
        'This server cannot run improve jobs: every trial runs in a bubblewrap sandbox and bwrap is not installed on the server machine. Install bubblewrap there (e.g. apt-get install bubblewrap) and restart the server.',
      );
    const running = runningByDatabase.get(path);
    if (running)
      return conflict(
        context,
        `Job ${running.job.id} (improve job ${running.job.options.jobId}) is running on this database, and the harness head is one per database. Wait for it (GET /v1/jobs/${running.job.id}/events) or cancel it (DELETE /v1/jobs/${running.job.id}), then post again.`,
      );
    const entry = new JobEntry(settings);
    jobs.set(entry.job.id, entry);
    runningByDatabase.set(path, entry);
    void runJob(entry, path, options);
    context.header('Location', `/v1/jobs/${entry.job.id}`);
    return context.json({ job: entry.job }, 202);
  });

  app.get('/v1/jobs', (context) => context.json({ jobs: [...jobs.values()].reverse().map((entry) => entry.job) }));

  app.get('/v1/jobs/:id', (context) => context.json({ job: find(context.req.param('id')).job }));

  app.delete('/v1/jobs/:id', async (context) => {
    const entry = find(context.req.param('id'));
    if (entry.isFinished)
      return conflict(
        context,
        `Job ${entry.job.id} already finished (${entry.job.status}): there is nothing to cancel.`,
      );
    if (!entry.controller.signal.aborted) {
      entry.controller.abort();
      entry.note('Cancelling: stopping the running trials.');
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([entry.settled, new Promise((resolve) => (timer = setTimeout(resolve, CANCEL_WAIT_MS)))]);
    clearTimeout(timer);
    return context.json({ job: entry.job }, entry.isFinished ? 200 : 202);
  });

  app.get('/v1/jobs/:id/events', (context) => {
    const entry = find(context.req.param('id'));
    return streamSSE(context, (stream) => followJob(entry, stream));
  });
};

/**
 * Runs the job on a connection of its own, closed when it ends; never throws (a failure is the job's outcome). The
 * database is free for the next job before `end` goes out, so a client that posts again on seeing `end` gets no 409.
 */
async function runJob(
  entry: JobEntry,
  path: string,
  options: Awaited<ReturnType<typeof parseImproveRequest>>['options'],
): Promise<void> {
  const signal = entry.controller.signal;
  let jobLog: EventLog | undefined;
  let outcome: Parameters<JobEntry['finish']>[0];
  try {
    const sandbox = await openSandbox();
    jobLog = await EventLog.open(path);
    entry.start();
    const result = await improve(jobLog, {
      ...options,
      signal,
      trials: { sandbox },
      onPhase: (phase) => entry.phase(phase.phase, phase.message),
      onTrials: (progress) => entry.trials(progress),
    });
    outcome = {
      status: 'succeeded',
      result: toJsonValue(result) as ImproveResult,
      error: null,
      phase: 'finished',
      message: `Harness ${result.initialVersionId} → ${result.finalVersionId}; ${result.trialsRun} trials run, ${result.acceptedEdits.length} edit${result.acceptedEdits.length === 1 ? '' : 's'} accepted.`,
    };
  } catch (error) {
    const reason = toProblem(error).detail;
    outcome = signal.aborted
      ? {
          status: 'cancelled',
          result: null,
          error: `Cancelled: ${reason} To continue, POST /v1/improve with "jobId": "${options.jobId}" and the same options.`,
          message: 'Cancelled.',
        }
      : { status: 'failed', result: null, error: reason, message: `Failed: ${reason}` };
  } finally {
    jobLog?.close();
  }
  if (runningByDatabase.get(path) === entry) runningByDatabase.delete(path);
  entry.finish(outcome);
}

/**
 * The job's event stream: its state at once as `progress` (or `end` when it is over), each change as `progress` (at
 * most four a second), and `end` with the final job, after which the stream closes.
 */
async function followJob(entry: JobEntry, stream: SSEStreamingApi): Promise<void> {
  if (entry.isFinished) {
    await stream.writeSSE({ event: 'end', data: JSON.stringify(entry.job) });
    return;
  }
  let writes: Promise<unknown> = Promise.resolve();
  const send = (text: () => Promise<unknown>) => {
    writes = writes.then(text).catch(() => undefined);
  };
  await new Promise<void>((resolve) => {
    const keepAlive = setInterval(() => send(() => stream.write(': keep-alive\n\n')), KEEP_ALIVE_MS);
    const stop = () => {
      clearInterval(keepAlive);
      unsubscribe();
      resolve();
    };
    const unsubscribe = entry.subscribe((event, job) => {
      send(() => stream.writeSSE({ event, data: JSON.stringify(job) }));
      if (event === 'end') stop();
    });
    stream.onAbort(stop);
    send(() => stream.writeSSE({ event: 'progress', data: JSON.stringify(entry.job) }));
  });
  await writes;
}

/** The body of `POST /v1/improve`: a JSON object with known fields only (a misspelt field is named, not ignored). */
async function readImproveBody(context: Context): Promise<ImproveRequest> {
  const text = await context.req.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new HttpProblem(
      400,
      'Bad Request',
      `The body is not JSON (${(error as Error).message}): send an object such as {"model": "sim:late-artifacts", "iterations": 1}.`,
    );
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new HttpProblem(
      400,
      'Bad Request',
      'The body must be a JSON object such as {"model": "sim:late-artifacts", "iterations": 1}.',
    );
  const unknown = Object.keys(body).filter((field) => !BODY_FIELDS.has(field));
  if (unknown.length > 0)
    throw new HttpProblem(
      400,
      'Bad Request',
      `Unknown field${unknown.length === 1 ? '' : 's'} ${unknown.join(', ')}: the fields are ${IMPROVE_REQUEST_FIELDS.join(', ')}.`,
    );
  return body as ImproveRequest;
}

/** A 409 problem; the error handler's statuses stop at the ones the rest of the API uses. */
function conflict(context: Context, detail: string): Response {
  return context.body(JSON.stringify({ type: 'about:blank', title: 'Conflict', status: 409, detail }), 409, {
    'Content-Type': 'application/problem+json',
  });
}
