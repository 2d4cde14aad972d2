import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { installAnalytics } from '../../analytics/index.js';
import { createApp, restrictServerFileAccess } from '../../api/index.js';
import { cancelRunningJobs, EMPTY_TALLY, type Job, tallyTrials } from '../../api/jobs.js';
import { EventLog } from '../../core/index.js';
import { findBubblewrap } from '../../tasks/index.js';
import { readJobTrialRuns, trialKey } from '../../validator/index.js';
import { type ServedApp, serveApp } from '../support/http-app.js';

const NO_BUBBLEWRAP = findBubblewrap() === undefined;
if (NO_BUBBLEWRAP)
  console.warn(
    'Skipping the improve jobs that run trials: bubblewrap (bwrap) is not installed (apt-get install bubblewrap).',
  );

/** A small job: 4 held-in and 2 held-out tasks, one attempt, two candidates (the second one, a loop breaker, wins). */
const SMALL_JOB = {
  model: 'sim:late-artifacts',
  iterations: 1,
  candidates: 2,
  attempts: 1,
  gate: 'paper',
  seed: 0,
  heldIn: ['archive-merge-csv', 'dedupe-emails', 'fix-spaces-in-names', 'ini-update'],
  heldOut: ['file-manifest', 'extract-errors'],
  sealed: [],
  maxPassingFireRate: 1,
};

let folder: string;
let log: EventLog;
let served: ServedApp;
let address: string;

beforeEach(async () => {
  folder = mkdtempSync(join(tmpdir(), 'selfharness-jobs-'));
  log = await EventLog.open(join(folder, 'log.duckdb'));
  await installAnalytics(log.database);
  // As `selfharness serve` does: the job's mining must work under the server's file restrictions.
  await restrictServerFileAccess(log);
  const app = createApp({ log });
  served = await serveApp(app);
  address = served.url;
});

afterEach(async () => {
  // A test that failed halfway leaves no job writing to a log about to be closed, nor a stream holding the server.
  await cancelRunningJobs();
  await served.stop();
  log.close();
  rmSync(folder, { recursive: true, force: true });
});

function post(path: string, body: unknown): Promise<Response> {
  return fetch(`${address}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function problemOf(response: Response): Promise<{ status: number; detail: string }> {
  expect(response.headers.get('content-type')).toContain('application/problem+json');
  return (await response.json()) as { status: number; detail: string };
}

interface StreamEvent {
  event: string;
  job: Job;
  /** Milliseconds since the stream was opened. */
  at: number;
}

/**
 * Reads a job's event stream the way the dashboard does (fetch, not EventSource), calling `onEvent` for each event,
 * until the server closes it; returns every event.
 */
async function followEvents(id: string, onEvent: (event: StreamEvent) => void = () => {}): Promise<StreamEvent[]> {
  const opened = Date.now();
  const response = await fetch(`${address}/v1/jobs/${id}/events`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/event-stream');
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const events: StreamEvent[] = [];
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf('\n\n');
      const lines = block.split('\n');
      const event = lines
        .find((line) => line.startsWith('event:'))
        ?.slice(6)
        .trim();
      const data = lines
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).trimStart())
        .join('\n');
      if (event === undefined) continue;
      const entry = { event, job: JSON.parse(data) as Job, at: Date.now() - opened };
      events.push(entry);
      onEvent(entry);
    }
  }
  return events;
}

describe('tallyTrials', () => {
  it('counts trials across trial sets without ever going down', () => {
    let tally = EMPTY_TALLY;
    tally = tallyTrials(tally, { label: 'baseline', versionId: 'a', done: 2, total: 6 });
    tally = tallyTrials(tally, { label: 'baseline', versionId: 'a', done: 6, total: 6 });
    tally = tallyTrials(tally, { label: 'candidate x', versionId: 'b', done: 1, total: 6 });
    expect(tally.before + tally.setDone).toBe(7);
    expect(tally.before + tally.setTotal).toBe(12);
    // A second round of the same set (invalid trials run again) starts from the finished ones.
    tally = tallyTrials(tally, { label: 'candidate x', versionId: 'b', done: 0, total: 6 });
    expect(tally.before + tally.setDone).toBe(7);
  });
});

describe('improve job requests that are refused', () => {
  it('answers 400 naming the field for bad bodies, 404 for unknown jobs, and creates no job', async () => {
    const cases: [unknown, string][] = [
      ['{not json', 'The body is not JSON'],
      [[1, 2], 'The body must be a JSON object'],
      [{ model: 'sim:late-artifacts', iteration: 1 }, 'Unknown field iteration: the fields are model, iterations,'],
      [{ iterations: 1 }, 'model is required'],
      [{ model: 'sim:nope' }, 'model: Unknown simulated model profile nope in sim:nope: the profiles are clean,'],
      [{ model: 'gpt' }, 'model: Unknown model "gpt": use openai:MODEL'],
      [{ model: 'sim:clean', gate: 'lenient' }, 'Unknown gate "lenient": use strict or paper.'],
      [{ model: 'sim:clean', iterations: 0 }, 'iterations must be a whole number of at least 1, not 0.'],
      [{ model: 'sim:clean', attempts: 1.5 }, 'attempts must be a whole number of at least 1, not 1.5.'],
      [{ model: 'sim:clean', proposer: 'magic' }, 'Unknown proposer "magic": use rules or llm.'],
      [{ model: 'sim:clean', maxPassingFireRate: 2 }, 'maxPassingFireRate must be a number from 0 to 1, not 2.'],
      [{ model: 'sim:clean', heldOut: ['count-words'] }, 'heldOut: Task count-words is not in the held-out split'],
      [{ model: 'sim:clean', heldIn: 7 }, 'heldIn must be a list of task ids'],
      [{ model: 'sim:clean', jobId: 'a b' }, 'jobId: Job id "a b" is not valid'],
    ];
    for (const [body, message] of cases) {
      const response = await post('/v1/improve', body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect((await problemOf(response)).detail).toContain(message);
    }
    expect(await (await fetch(`${address}/v1/jobs`)).json()).toEqual({ jobs: [] });

    for (const [method, path] of [
      ['GET', '/v1/jobs/job-nope'],
      ['GET', '/v1/jobs/job-nope/events'],
      ['DELETE', '/v1/jobs/job-nope'],
    ] as const) {
      const response = await fetch(`${address}${path}`, { method });
      expect(response.status, `${method} ${path}`).toBe(404);
      expect((await problemOf(response)).detail).toBe('Unknown job job-nope: list jobs with GET /v1/jobs.');
    }
  });
});

describe.skipIf(NO_BUBBLEWRAP)('improve jobs over HTTP', () => {
  it('runs a job beside other requests, streams its progress, and ends with the result the log holds', async () => {
    const started = await post('/v1/improve', { ...SMALL_JOB, jobId: 'api-job' });
    expect(started.status).toBe(202);
    const { job } = (await started.json()) as { job: Job };
    expect(started.headers.get('location')).toBe(`/v1/jobs/${job.id}`);
    expect(job).toMatchObject({ kind: 'improve', result: null, error: null, finishedAt: null });
    expect(['queued', 'running']).toContain(job.status);
    expect(job.options).toMatchObject({ model: 'sim:late-artifacts', iterations: 1, candidates: 2, jobId: 'api-job' });
    expect(job.options.tasks['held-out']).toEqual(['file-manifest', 'extract-errors']);

    const second = await post('/v1/improve', { model: 'sim:clean' });
    expect(second.status).toBe(409);
    expect((await problemOf(second)).detail).toContain(`Job ${job.id} (improve job api-job) is running`);

    // Other requests are answered while the job runs on its own connection.
    const answered: { path: string; ms: number; status: number; during: boolean }[] = [];
    const whileRunning = async () => {
      for (;;) {
        const state = ((await (await fetch(`${address}/v1/jobs/${job.id}`)).json()) as { job: Job }).job;
        if (state.status !== 'running' || state.progress.done === 0) {
          if (state.finishedAt !== null) return;
          await new Promise((resolve) => setTimeout(resolve, 100));
          continue;
        }
        for (const [path, init] of [
          ['/v1/runs?limit=5', undefined],
          ['/v1/sql', { method: 'POST', body: 'SELECT count(*) AS n FROM runs' }],
        ] as const) {
          const begun = Date.now();
          const response = await fetch(`${address}${path}`, init);
          await response.arrayBuffer();
          const after = ((await (await fetch(`${address}/v1/jobs/${job.id}`)).json()) as { job: Job }).job;
          answered.push({ path, ms: Date.now() - begun, status: response.status, during: after.finishedAt === null });
        }
        return;
      }
    };
    const [events] = await Promise.all([followEvents(job.id), whileRunning()]);

    expect(answered.map((entry) => [entry.path, entry.status, entry.during])).toEqual([
      ['/v1/runs?limit=5', 200, true],
      ['/v1/sql', 200, true],
    ]);
    if (process.env.SELFHARNESS_JOBS_TIMING) console.log(answered);
    for (const entry of answered) expect(entry.ms).toBeLessThan(2000);

    const progress = events.filter((event) => event.event === 'progress');
    const end = events.at(-1)!;
    expect(end.event).toBe('end');
    expect(events.filter((event) => event.event === 'end')).toHaveLength(1);
    expect(progress.length).toBeGreaterThan(3);
    const done = progress.map((event) => event.job.progress.done);
    for (let index = 1; index < done.length; index++) expect(done[index]).toBeGreaterThanOrEqual(done[index - 1]!);
    expect(done.at(-1)!).toBeGreaterThan(done[0]!);
    for (const event of progress) expect(event.job.progress.done).toBeLessThanOrEqual(event.job.progress.total);
    expect(end.job.error).toBeNull();
    // Phases come in the loop's order (`ImprovePhaseName`); a short one may fall between two throttled events, the long
    // ones do not. The closing trials (`final`) can be long enough for an event on a busy machine.
    const order = [
      'queued',
      'starting',
      'baseline',
      'mining',
      'proposing',
      'screening',
      'gate',
      'merge',
      'result',
      'sealed',
      'final',
    ];
    const phases = progress.map((event) => order.indexOf(event.job.progress.phase));
    expect(phases).not.toContain(-1);
    for (let index = 1; index < phases.length; index++)
      expect(phases[index]).toBeGreaterThanOrEqual(phases[index - 1]!);
    const seen = new Set(progress.map((event) => event.job.progress.phase));
    expect(seen.has('baseline') && seen.has('gate'), [...seen].join(', ')).toBe(true);
    // At most four progress events a second after the first (the state on connecting), with slack for delivery.
    const throttled = progress.slice(1);
    expect(throttled.length).toBeLessThanOrEqual(4 * ((end.at - throttled[0]!.at) / 1000) + 2);
    for (let index = 4; index < throttled.length; index++)
      expect(throttled[index]!.at - throttled[index - 4]!.at).toBeGreaterThanOrEqual(600);

    const final = end.job;
    expect(final.error).toBeNull();
    expect(final.status).toBe('succeeded');
    expect(final.progress.phase).toBe('finished');
    expect(final.startedAt! >= final.createdAt && final.finishedAt! >= final.startedAt!).toBe(true);
    const result = final.result!;
    expect(result.jobId).toBe('api-job');

    // The promoted version and the accepted edits are the log's.
    const promotions = (await (
      await post('/v1/sql', {
        sql: "SELECT data->>'versionId' AS version, data->>'previousVersionId' AS previous FROM events WHERE type = 'harness-promote' ORDER BY seq",
      })
    ).json()) as { rows: { version: string; previous: string }[] };
    expect(promotions.rows).toEqual([{ version: result.finalVersionId, previous: result.initialVersionId }]);
    const validations = (await (await fetch(`${address}/v1/validations`)).json()) as {
      validations: { proposalId: string; stage: string; decision: string }[];
    };
    const acceptedByGate = validations.validations
      .filter((entry) => entry.stage === 'gate' && entry.decision === 'accepted')
      .map((entry) => entry.proposalId);
    expect(result.acceptedEdits.length).toBeGreaterThan(0);
    expect(result.acceptedEdits.map((edit) => edit.proposalId).sort()).toEqual(acceptedByGate.sort());

    // Pass rates before and after are those of the job's runs in the log.
    const rates = (await (
      await post('/v1/sql', {
        sql: `SELECT harness_version AS version, split, count(*) FILTER (outcome = 'passed') AS passed, count(*) AS valid
              FROM runs WHERE run_id IN (SELECT run_id FROM events WHERE type = 'run-start'
                AND starts_with(data->'metadata'->>'batchId', 'trial:api-job:')) AND outcome IN ('passed', 'failed')
              GROUP BY ALL`,
      })
    ).json()) as { rows: { version: string; split: string; passed: number; valid: number }[] };
    const cell = (version: string, split: string) => {
      const row = rates.rows.find((entry) => entry.version === version && entry.split === split);
      return row && { passed: row.passed, valid: row.valid };
    };
    expect(cell(result.initialVersionId, 'held-in')).toEqual({
      passed: result.before.heldIn!.passed,
      valid: result.before.heldIn!.valid,
    });
    expect(cell(result.finalVersionId, 'held-out')).toEqual({
      passed: result.after.heldOut!.passed,
      valid: result.after.heldOut!.valid,
    });
    expect(result.after.heldOut!.rate).toBeGreaterThan(result.before.heldOut!.rate);

    // The job, listed and read back, and its stream for a late client: the end at once.
    const listed = (await (await fetch(`${address}/v1/jobs`)).json()) as { jobs: Job[] };
    expect(listed.jobs.map((entry) => [entry.id, entry.status])).toEqual([[job.id, 'succeeded']]);
    expect(((await (await fetch(`${address}/v1/jobs/${job.id}`)).json()) as { job: Job }).job).toEqual(final);
    const late = await followEvents(job.id);
    expect(late.map((event) => [event.event, event.job.status])).toEqual([['end', 'succeeded']]);
    expect(late[0]!.at).toBeLessThan(1000);

    const cancelled = await fetch(`${address}/v1/jobs/${job.id}`, { method: 'DELETE' });
    expect(cancelled.status).toBe(409);
    expect((await problemOf(cancelled)).detail).toContain('already finished (succeeded)');
  }, 120_000);

  it('cancels a running job at once, and the same jobId posted again continues it without re-running trials', async () => {
    const body = { ...SMALL_JOB, jobId: 'cancel-job' };
    const { job } = (await (await post('/v1/improve', body)).json()) as { job: Job };
    let cancel: Promise<Response> | undefined;
    let cancelledAt = 0;
    const events = await followEvents(job.id, (event) => {
      if (cancel !== undefined || event.job.progress.done < 2) return;
      cancelledAt = Date.now();
      cancel = fetch(`${address}/v1/jobs/${job.id}`, { method: 'DELETE' });
    });
    expect(cancel).toBeDefined();
    const response = await cancel!;
    // Running trials are interrupted, not waited for: the answer comes within the agents' grace period.
    const cancelMs = Date.now() - cancelledAt;
    if (process.env.SELFHARNESS_JOBS_TIMING) console.log(`cancel answered in ${cancelMs} ms`);
    expect(cancelMs).toBeLessThan(8000);
    expect(response.status).toBe(200);
    const answer = ((await response.json()) as { job: Job }).job;
    expect(answer.status).toBe('cancelled');
    const end = events.at(-1)!;
    expect(end.event).toBe('end');
    expect(end.job.status).toBe('cancelled');
    expect(end.job.result).toBeNull();
    expect(end.job.error).toContain('"jobId": "cancel-job"');
    // It stopped in its baseline trials: no proposal was made.
    expect(end.job.progress.phase).toBe('baseline');
    const proposals = (await (await fetch(`${address}/v1/proposals`)).json()) as { proposals: unknown[] };
    expect(proposals.proposals).toEqual([]);
    const finishedBefore = (await readJobTrialRuns(log, 'cancel-job')).filter((run) =>
      ['passed', 'failed'].includes(run.outcome),
    );
    expect(finishedBefore.length).toBeGreaterThanOrEqual(2);

    // The database is free again: the same job continues from the log.
    const again = await post('/v1/improve', body);
    expect(again.status).toBe(202);
    const resumed = ((await again.json()) as { job: Job }).job;
    expect(resumed.id).not.toBe(job.id);
    const resumedEnd = (await followEvents(resumed.id)).at(-1)!.job;
    expect(resumedEnd.status, resumedEnd.error ?? '').toBe('succeeded');
    const finished = (await readJobTrialRuns(log, 'cancel-job')).filter((run) =>
      ['passed', 'failed'].includes(run.outcome),
    );
    const perKey = new Map<string, number>();
    for (const run of finished) perKey.set(trialKey(run), (perKey.get(trialKey(run)) ?? 0) + 1);
    expect([...perKey.values()].every((count) => count === 1)).toBe(true);
    for (const run of finishedBefore) expect(finished.map((entry) => entry.runId)).toContain(run.runId);
    expect(resumedEnd.result!.trialsRun).toBe(finished.length - finishedBefore.length);

    const listed = (await (await fetch(`${address}/v1/jobs`)).json()) as { jobs: Job[] };
    expect(listed.jobs.map((entry) => [entry.id, entry.status])).toEqual([
      [resumed.id, 'succeeded'],
      [job.id, 'cancelled'],
    ]);
  }, 120_000);
});
