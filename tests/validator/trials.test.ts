import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLog } from '../../core/index.js';
import { defaultHarnessSpec, ensureDefaultVersion, registerVersion } from '../../harness/index.js';
import { findBubblewrap, loadSuite, openSandbox, type Sandbox, type Suite } from '../../tasks/index.js';
import {
  type JobTrialRun,
  planTrialSet,
  readJobTrialRuns,
  runPairedTrials,
  runTrialSet,
  trialKey,
} from '../../validator/index.js';
import { writeSuite } from '../tasks/temporary-suite.js';

describe('planTrialSet', () => {
  const tasks = [
    { id: 'a', split: 'held-in' },
    { id: 'b', split: 'held-out' },
  ] as unknown as Parameters<typeof planTrialSet>[0]['tasks'];
  const set = { jobId: 'job', model: 'sim:clean', versionId: 'v1', tasks, attempts: 2, seed: 3 };
  const run = (task: string, attempt: number, outcome: string, seq: number, extra: Partial<JobTrialRun> = {}) => ({
    runId: `${task}-${attempt}-${seq}`,
    task,
    model: 'sim:clean',
    versionId: 'v1',
    attempt,
    seed: 3,
    outcome,
    seq,
    ...extra,
  });

  it('counts a trial finished once it has a valid run, ignores unfinished runs, and retries invalid ones a bounded number of times', () => {
    const plan = planTrialSet(
      set,
      [
        run('a', 1, 'passed', 1),
        run('a', 2, 'unfinished', 2),
        run('b', 1, 'invalid', 3),
        run('b', 1, 'invalid', 4),
        run('b', 2, 'invalid', 5),
        run('b', 2, 'failed', 6),
        run('a', 2, 'passed', 7, { versionId: 'other' }),
        run('a', 2, 'passed', 8, { model: 'sim:lost-state' }),
      ],
      1,
    );
    expect(plan.finished.map((trial) => [trial.task, trial.attempt, trial.outcome, trial.runs])).toEqual([
      ['a', 1, 'passed', 1],
      ['b', 1, 'invalid', 2],
      ['b', 2, 'failed', 2],
    ]);
    expect(plan.missing.map((entry) => [entry.task.id, entry.attempt])).toEqual([['a', 2]]);
  });
});

describe.skipIf(findBubblewrap() === undefined)('fresh paired trials in the sandbox', () => {
  let folder: string;
  let log: EventLog;
  let sandbox: Sandbox;
  let suite: Suite;
  let baseVersionId: string;
  let candidateVersionId: string;

  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'selfharness-trials-'));
    log = await EventLog.open(join(folder, 'log.duckdb'));
    sandbox = await openSandbox();
    suite = loadSuite(
      writeSuite([
        { id: 'one', solve: 'mkdir -p out\n\necho done > done.txt', setup: 'sleep 0.3' },
        { id: 'two', solve: 'echo start > log.txt\n\necho done > done.txt', setup: 'sleep 0.3' },
        { id: 'three', solve: 'ls\n\necho done > done.txt', split: 'held-out', setup: 'sleep 0.3' },
        { id: 'slow', solve: 'sleep 3\n\necho done > done.txt' },
        { id: 'broken', solve: 'echo done > done.txt\n\ntrue', setup: 'exit 3', split: 'held-out' },
      ]),
    );
    baseVersionId = (await ensureDefaultVersion(log)).versionId;
    candidateVersionId = (
      await registerVersion(log, {
        ...defaultHarnessSpec,
        middleware: [{ name: 'artifact-check' }],
      })
    ).version.versionId;
  });
  afterAll(() => {
    log?.close();
    rmSync(folder, { recursive: true, force: true });
  });

  const tasksOf = (...ids: string[]) => suite.tasks.filter((task) => ids.includes(task.id));

  it('runs base and candidate on the same tasks, attempts and seeds, pairs them, and runs nothing the second time', async () => {
    const input = {
      jobId: 'paired',
      model: 'sim:clean',
      tasks: tasksOf('one', 'two', 'three'),
      attempts: 2,
      seed: 5,
      baseVersionId,
      candidateVersionId,
    };
    const first = await runPairedTrials(log, input, { sandbox, concurrency: 2 });
    expect(first.ran).toBe(12);
    expect(first.pairs).toHaveLength(6);
    expect(first.pairs.map((pair) => [pair.task, pair.attempt, pair.split]).sort()).toEqual([
      ['one', 1, 'held-in'],
      ['one', 2, 'held-in'],
      ['three', 1, 'held-out'],
      ['three', 2, 'held-out'],
      ['two', 1, 'held-in'],
      ['two', 2, 'held-in'],
    ]);
    // Both versions faced the same draws: the runner logged the same trial seed on both sides of each pair.
    const seeds = new Map(
      (await log.query<{ run_id: string; seed: bigint }>('SELECT run_id, seed FROM runs')).map((row) => [
        row.run_id,
        Number(row.seed),
      ]),
    );
    const runs = await readJobTrialRuns(log, 'paired');
    expect(runs).toHaveLength(12);
    for (const pair of first.pairs) {
      const sides = runs.filter((run) => run.task === pair.task && run.attempt === pair.attempt);
      expect(sides.map((run) => run.versionId).sort()).toEqual([baseVersionId, candidateVersionId].sort());
      expect(seeds.get(sides[0]!.runId)).toBe(seeds.get(sides[1]!.runId));
    }
    const attemptSeeds = runs.filter((run) => run.task === 'one').map((run) => seeds.get(run.runId));
    expect(new Set(attemptSeeds).size).toBe(2);
    const again = await runPairedTrials(log, input, { sandbox, concurrency: 2 });
    expect(again.ran).toBe(0);
    expect(again.pairs).toEqual(first.pairs);
  });

  it('re-runs a trial left unfinished by an interruption under a new run id, and never re-runs a finished one', async () => {
    const set = {
      jobId: 'interrupted',
      model: 'sim:clean',
      versionId: baseVersionId,
      tasks: tasksOf('one', 'slow', 'three'),
      attempts: 1,
      seed: 9,
    };
    const controller = new AbortController();
    await expect(
      runTrialSet(log, set, {
        sandbox,
        concurrency: 2,
        signal: controller.signal,
        onProgress: (progress) => {
          if (progress.finished) controller.abort();
        },
      }),
    ).rejects.toThrow(/Interrupted while running trials.*run the same command again/);
    const before = await readJobTrialRuns(log, 'interrupted');
    const finishedBefore = before.filter((run) => run.outcome === 'passed' || run.outcome === 'failed');
    expect(finishedBefore.length).toBeGreaterThanOrEqual(1);
    expect(before.map((run) => run.outcome)).toContain('unfinished');

    const resumed = await runTrialSet(log, set, { sandbox, concurrency: 2 });
    expect(resumed.reused).toBe(finishedBefore.length);
    expect(resumed.ran).toBe(3 - finishedBefore.length);
    const after = await readJobTrialRuns(log, 'interrupted');
    const finishedPerKey = new Map<string, number>();
    for (const run of after.filter((entry) => entry.outcome === 'passed' || entry.outcome === 'failed'))
      finishedPerKey.set(trialKey(run), (finishedPerKey.get(trialKey(run)) ?? 0) + 1);
    expect([...finishedPerKey.values()]).toEqual([1, 1, 1]);
    for (const run of finishedBefore) expect(resumed.trials.map((trial) => trial.runId)).toContain(run.runId);
    const unfinished = after.filter((run) => run.outcome === 'unfinished');
    for (const run of unfinished) expect(resumed.trials.map((trial) => trial.runId)).not.toContain(run.runId);
  });

  it('retries an invalid trial a bounded number of times and then reports it invalid', async () => {
    const set = {
      jobId: 'invalid',
      model: 'sim:clean',
      versionId: baseVersionId,
      tasks: tasksOf('broken'),
      attempts: 1,
      seed: 1,
    };
    const result = await runTrialSet(log, set, { sandbox, maxInvalidRetries: 1 });
    expect(result.ran).toBe(2);
    expect(result.trials).toMatchObject([{ task: 'broken', outcome: 'invalid', runs: 2 }]);
    const again = await runTrialSet(log, set, { sandbox, maxInvalidRetries: 1 });
    expect(again.ran).toBe(0);
    const reasons = await log.query<{ failure_reason: string }>(
      "SELECT failure_reason FROM runs WHERE task = 'broken' AND outcome = 'invalid'",
    );
    expect(reasons.map((row) => row.failure_reason)).toEqual(['setup_failed', 'setup_failed']);
  });
});
