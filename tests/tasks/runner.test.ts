import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLog } from '../../core/index.js';
import type { TrialAgent } from '../../harness/index.js';
import {
  createOracleAgent,
  deriveTrialSeed,
  findBubblewrap,
  loadSuite,
  openSandbox,
  runTrials,
  type Sandbox,
  summarizeTrials,
  trialRunId,
} from '../../tasks/index.js';
import { verifierFor, writeSuite } from './temporary-suite.js';

describe('run ids and seeds', () => {
  const input = { batchId: 'b1', task: 'count-words', model: 'oracle', attempt: 1, seed: 7 };
  it('are the same for the same inputs and differ across batches, attempts and harness versions', () => {
    expect(trialRunId(input)).toBe(trialRunId({ ...input }));
    expect(trialRunId(input)).toMatch(/^count-words@1-[0-9a-f]{12}$/);
    expect(trialRunId({ ...input, batchId: 'b2' })).not.toBe(trialRunId(input));
    expect(trialRunId({ ...input, attempt: 2 })).not.toBe(trialRunId(input));
    expect(trialRunId({ ...input, harnessVersion: 'h1' })).not.toBe(trialRunId(input));
  });
  it('give each trial its own seed, the same for every model', () => {
    expect(deriveTrialSeed(7, 'a', 1)).toBe(deriveTrialSeed(7, 'a', 1));
    expect(deriveTrialSeed(7, 'a', 1)).not.toBe(deriveTrialSeed(7, 'a', 2));
    expect(deriveTrialSeed(7, 'a', 1)).not.toBe(deriveTrialSeed(8, 'a', 1));
  });
});

describe('summaries', () => {
  it('leave invalid and unfinished trials out of pass rates', () => {
    const base = { runId: 'r', attempt: 1, seed: 1, durationMs: 1 };
    const summary = summarizeTrials([
      { ...base, task: 'a', split: 'held-in', outcome: 'passed' },
      { ...base, task: 'b', split: 'held-in', outcome: 'failed' },
      { ...base, task: 'c', split: 'held-in', outcome: 'invalid' },
      { ...base, task: 'd', split: 'held-out', outcome: 'unfinished' },
      { ...base, task: 'e', split: 'held-out', outcome: 'passed' },
    ]);
    expect(summary.rows.map((row) => [row.split, row.passRate, row.invalid, row.unfinished])).toEqual([
      ['held-in', 0.5, 1, 0],
      ['held-out', 1, 0, 1],
    ]);
    expect(summary.overall).toMatchObject({ trials: 5, passed: 2, failed: 1, passRate: 2 / 3 });
  });
});

describe.skipIf(findBubblewrap() === undefined)('runTrials', () => {
  let folder: string;
  let log: EventLog;
  let sandbox: Sandbox;
  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'selfharness-runner-'));
    log = await EventLog.open(join(folder, 'log.duckdb'));
    sandbox = await openSandbox();
  });
  afterAll(() => {
    log.close();
    rmSync(folder, { recursive: true, force: true });
  });

  it('tells agent failures from infrastructure failures, and logs each trial as it goes', async () => {
    const root = writeSuite([
      { id: 'broken-setup', setup: 'echo "cannot prepare" >&2; exit 3', solve: 'echo done > done.txt' },
      { id: 'crashing-verifier', solve: 'echo done > done.txt', test: 'echo "verifier bug" >&2; exit 1' },
      { id: 'slow-verifier', solve: 'echo done > done.txt', test: 'sleep 30', verifierTimeoutSec: 1 },
      { id: 'slow-agent', solve: 'sleep 30; echo done > done.txt', agentTimeoutSec: 1 },
      { id: 'wrong-answer', solve: 'echo nope > done.txt', split: 'held-out' },
      {
        id: 'works',
        setup: 'echo prepared > setup.txt',
        solve: 'cat setup.txt; echo done > done.txt',
        // The reference solution is copied into the workspace for the agent's run only.
        test: verifierFor('[ "$(cat done.txt)" = done ] && [ ! -e solution ]'),
        split: 'held-out',
      },
    ]);
    const suite = loadSuite(root);
    const progress: number[] = [];
    const batch = await runTrials({
      log,
      tasks: suite.tasks,
      agent: createOracleAgent(),
      concurrency: 2,
      seed: 3,
      sandbox,
      onProgress: (state) => progress.push(state.done),
    });
    const outcomes = Object.fromEntries(
      batch.results.map((result) => [result.task, [result.outcome, result.failureReason]]),
    );
    expect(outcomes).toEqual({
      'broken-setup': ['invalid', 'setup_failed'],
      'crashing-verifier': ['invalid', 'verifier_crashed'],
      'slow-verifier': ['invalid', 'verifier_timeout'],
      'slow-agent': ['failed', 'agent_timeout'],
      'wrong-answer': ['failed', 'tests_failed'],
      works: ['passed', undefined],
    });
    expect(batch.results.find((result) => result.task === 'broken-setup')?.detail).toContain('cannot prepare');
    expect(Math.max(...progress)).toBe(6);

    const runs = await log.query<{ task: string; outcome: string; failure_reason: string | null; split: string }>(
      'SELECT task, outcome, failure_reason, split, dataset, model, seed FROM runs ORDER BY task',
    );
    expect(runs.map((run) => [run.task, run.outcome, run.failure_reason])).toEqual(
      Object.entries(outcomes)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([task, [outcome, reason]]) => [task, outcome, reason ?? null]),
    );
    expect(runs.every((run) => (run as Record<string, unknown>).dataset === 'selfharness-tasks')).toBe(true);
    const works = batch.results.find((result) => result.task === 'works')!;
    const calls = await log.query<{ tool: string; command: string; exit_code: number; output_excerpt: string }>(
      'SELECT tool, command, exit_code, output_excerpt FROM tool_calls WHERE run_id = $1',
      [works.runId],
    );
    expect(calls).toEqual([
      { tool: 'shell', command: 'bash solution/solve.sh', exit_code: 0, output_excerpt: 'prepared\n' },
    ]);
    const tests = await log.query('SELECT test_name, status FROM verifications WHERE run_id = $1', [works.runId]);
    expect(tests).toEqual([{ test_name: 'result', status: 'passed' }]);
    const listing = await log.query<{ n: bigint }>(
      "SELECT count(*) AS n FROM events WHERE run_id = $1 AND type IN ('run-start', 'run-verify', 'run-end')",
      [works.runId],
    );
    expect(Number(listing[0]?.n)).toBe(3);
    expect(summarizeTrials(batch.results).overall).toMatchObject({ passed: 1, failed: 2, invalid: 3, passRate: 1 / 3 });
  });

  it('marks a trial whose agent throws invalid, and starts no trial once interrupted', async () => {
    const root = writeSuite([
      { id: 'first', solve: 'echo done > done.txt' },
      { id: 'second', solve: 'echo done > done.txt', test: verifierFor('true') },
    ]);
    const suite = loadSuite(root);
    const broken: TrialAgent = {
      model: 'scripted:throws',
      async solve() {
        throw new Error('model endpoint unreachable');
      },
    };
    const thrown = await runTrials({ log, tasks: suite.tasks.slice(0, 1), agent: broken, sandbox });
    expect(thrown.results[0]).toMatchObject({
      outcome: 'invalid',
      failureReason: 'agent_error',
      detail: 'model endpoint unreachable',
    });

    const controller = new AbortController();
    const waiting: TrialAgent = {
      model: 'scripted:waits',
      async solve(context) {
        const session = await context.workspace.openSession();
        const running = session.run('sleep 60', { timeoutMs: 120_000, maxOutputBytes: 1000 });
        setTimeout(() => controller.abort(), 200);
        await running;
        return { finished: true };
      },
    };
    const started = Date.now();
    const interrupted = await runTrials({
      log,
      tasks: suite.tasks,
      agent: waiting,
      sandbox,
      signal: controller.signal,
    });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(interrupted.interrupted).toBe(true);
    expect(interrupted.results.map((result) => result.outcome)).toEqual(['unfinished']);
    const run = await log.query<{ outcome: string }>('SELECT outcome FROM runs WHERE run_id = $1', [
      interrupted.results[0]!.runId,
    ]);
    expect(run).toEqual([{ outcome: 'unfinished' }]);
  });

  it('passes a bundled task with the oracle and logs its verifier results', async () => {
    const suite = loadSuite();
    const tasks = suite.tasks.filter((task) => task.id === 'make-hello-subdir');
    const batch = await runTrials({ log, tasks, agent: createOracleAgent(), attempts: 2, sandbox });
    expect(batch.results.map((result) => [result.outcome, result.attempt])).toEqual([
      ['passed', 1],
      ['passed', 2],
    ]);
    const tests = await log.query<{ test_name: string; status: string }>(
      'SELECT test_name, status FROM verifications WHERE run_id = $1 ORDER BY test_name',
      [batch.results[0]!.runId],
    );
    expect(tests).toEqual([
      { test_name: 'built with make', status: 'passed' },
      { test_name: 'program output', status: 'passed' },
      { test_name: 'required file out/hello.txt', status: 'passed' },
    ]);
  });
});
