import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { findBubblewrap } from '../../tasks/index.js';
import { startCli } from '../support/cli.js';
import { processWithArgument, waitUntil, writeSuite } from '../tasks/temporary-suite.js';
import { type RunJson, scratchFolder, selfharness, sql } from './support-harness.js';

/**
 * Stopping `selfharness run --model sim:clean` midway, while the simulated agent is in the middle of a trial: killed
 * outright, the log stays consistent (the projections rebuild to the same rows), the trial in flight is `unfinished`
 * and no rate or view counts it; interrupted, the summary leaves it out of the pass rate.
 *
 * The batch, one trial at a time, on a suite written for the test: a task the reference steps pass, one they fail,
 * one whose steps include a long `sleep` (the simulated model works from the reference steps, so it runs it after a
 * few calls of its own), and one that never starts. The test stops the run while that `sleep` runs in the sandbox.
 */

const hasBubblewrap = findBubblewrap() !== undefined;
const TASKS = ['a-passes', 'b-fails', 'c-sleeps', 'd-never-starts'];
const IN_FLIGHT = 'c-sleeps';

function suiteSleeping(seconds: string): string {
  return writeSuite([
    { id: 'a-passes', solve: 'ls -la\n\necho done > done.txt' },
    { id: 'b-fails', solve: 'ls -la\n\necho nope > done.txt' },
    { id: 'c-sleeps', solve: `mkdir -p work\n\nsleep ${seconds}\n\necho done > done.txt` },
    { id: 'd-never-starts', solve: 'ls -la\n\necho done > done.txt' },
  ]);
}

interface Started {
  suite: string;
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The first progress line that shows two trials done (the third starts right after). */
  twoDone: Promise<string>;
}

/** Runs this test started, stopped when a test fails before stopping them. */
const running = new Set<ChildProcess>();
/** The suites this test wrote, removed at the end. */
const suites: string[] = [];
afterEach(() => {
  for (const child of running) child.kill('SIGKILL');
});
afterAll(() => {
  for (const suite of suites) rmSync(suite, { recursive: true, force: true });
});

function startBatch(database: string, sleepSeconds: string, extra: readonly string[] = []): Started {
  const suite = suiteSleeping(sleepSeconds);
  suites.push(suite);
  const child = startCli(
    [
      '--db',
      database,
      'run',
      '--suite',
      suite,
      '--tasks',
      'all',
      '--model',
      'sim:clean',
      '--concurrency',
      '1',
      '--seed',
      '0',
      ...extra,
    ],
    { SELFHARNESS_PROGRESS_INTERVAL_MS: '0' },
  );
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk) => (stdout += chunk));
  const twoDone = new Promise<string>((resolve, reject) => {
    child.stderr?.on('data', (chunk) => {
      stderr += chunk;
      const line = stderr.split('\n').find((text) => text.startsWith('trials 2/4 '));
      if (line) resolve(line);
    });
    child.on('close', () => reject(new Error(`the run ended before two trials were done:\n${stderr}`)));
  });
  running.add(child);
  child.on('close', () => running.delete(child));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return { suite, child, stdout: () => stdout, stderr: () => stderr, exited, twoDone };
}

/** passed and failed counts of a progress line. */
function progressCounts(line: string): { passed: number; failed: number } {
  const match = /passed (\d+) · failed (\d+)/.exec(line);
  return { passed: Number(match?.[1]), failed: Number(match?.[2]) };
}

/**
 * Each test waits for two trials, then up to a minute for the sleeping trial's `sleep`, then for the run to stop: on a
 * machine busy with other tests that takes longer than the default minute per test (one CI run timed out here).
 */
const STOPPING_TIMEOUT_MS = 180_000;

describe.skipIf(!hasBubblewrap)('stopping a simulated run midway', { timeout: STOPPING_TIMEOUT_MS }, () => {
  const scratch = scratchFolder('e2e-interrupt');
  afterAll(() => scratch.remove());

  it('killed with SIGKILL, leaves a consistent log whose trial in flight is unfinished and counted nowhere', async () => {
    const database = join(scratch.path, 'killed.duckdb');
    const batch = startBatch(database, '61.7');
    const progress = await batch.twoDone;
    expect(await waitUntil(() => processWithArgument('sleep 61.7'), 60_000)).toBe(true);
    // The runner writes events in the background (an append takes a few hundred milliseconds here); what it had not
    // written when it was killed is lost, so give it the time to store the steps taken before the sleep.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    batch.child.kill('SIGKILL');
    expect(await batch.exited).toEqual({ code: null, signal: 'SIGKILL' });
    // The sandbox dies with the runner.
    expect(await waitUntil(() => !processWithArgument('sleep 61.7'), 10_000)).toBe(true);
    const done = progressCounts(progress);
    expect(done.passed + done.failed).toBe(2);

    // The events rebuild into exactly the projections the runner kept: nothing half-written.
    const rebuilt = JSON.parse((await selfharness(database, ['--json', 'rebuild'])).stdout) as {
      tables: { table: string; rows: number; unchanged: boolean }[];
    };
    expect(rebuilt.tables.map((table) => [table.table, table.unchanged])).toEqual(
      rebuilt.tables.map((table) => [table.table, true]),
    );

    const runs = await sql<{ run_id: string; task: string; outcome: string; step_count: number }>(
      database,
      'SELECT run_id, task, outcome, step_count FROM runs ORDER BY first_seq',
    );
    expect(runs.map((run) => run.task)).toEqual(TASKS.slice(0, 3));
    const [first, second, inFlight] = runs;
    expect([first?.outcome, second?.outcome].filter((outcome) => outcome === 'passed')).toHaveLength(done.passed);
    expect([first?.outcome, second?.outcome].filter((outcome) => outcome === 'failed')).toHaveLength(done.failed);
    expect(inFlight).toMatchObject({ task: IN_FLIGHT, outcome: 'unfinished' });
    // Midway: the agent had taken turns (system prompt, instruction, then its own steps), but no verdict and no end.
    expect(inFlight?.step_count).toBeGreaterThan(3);
    const types = await sql<{ type: string; events: number }>(
      database,
      `SELECT type, CAST(count(*) AS INTEGER) AS events FROM events WHERE run_id = '${inFlight?.run_id}' GROUP BY 1 ORDER BY 1`,
    );
    expect(types.map((row) => row.type)).toEqual(['run-start', 'step-create', 'tool-call', 'tool-result']);

    // No view counts it: not a failure, not mined, not in the model's profile, not passed or failed per version.
    const counted = await sql<{ failed_runs: number; mined: number; profile_failed: number; valid_failures: number }>(
      database,
      `SELECT (SELECT CAST(count(*) AS INTEGER) FROM failed_runs) AS failed_runs,
              (SELECT CAST(count(*) AS INTEGER) FROM detect_mechanisms(include_passing := true) WHERE run_id = '${inFlight?.run_id}') AS mined,
              (SELECT CAST(max(failed_runs) AS INTEGER) FROM model_profiles WHERE model = 'sim:clean') AS profile_failed,
              (SELECT CAST(count(*) FILTER (WHERE is_failed) AS INTEGER) FROM run_summary) AS valid_failures`,
    );
    expect(counted).toEqual([
      {
        failed_runs: done.failed,
        mined: 0,
        profile_failed: done.failed === 0 ? null : done.failed,
        valid_failures: done.failed,
      },
    ]);
    const versions = JSON.parse((await selfharness(database, ['--json', 'harness', 'log'])).stdout) as {
      runs: number;
      passed: number;
      failed: number;
    }[];
    expect(versions.map(({ runs: total, passed, failed }) => ({ runs: total, passed, failed }))).toEqual([
      { runs: 3, passed: done.passed, failed: done.failed },
    ]);

    // A later run adds its own trials and leaves the unfinished one as it is.
    const rerun = JSON.parse(
      (
        await selfharness(database, [
          'run',
          '--suite',
          batch.suite,
          '--tasks',
          'a-passes',
          '--model',
          'sim:clean',
          '--seed',
          '0',
          '--json',
        ])
      ).stdout,
    ) as RunJson;
    expect(rerun.summary.overall).toMatchObject({ trials: 1, unfinished: 0, invalid: 0 });
    const after = await sql<{ run_id: string; outcome: string }>(
      database,
      'SELECT run_id, outcome FROM runs ORDER BY first_seq',
    );
    expect(after).toHaveLength(4);
    expect(after[2]).toEqual({ run_id: inFlight?.run_id, outcome: 'unfinished' });
    expect(after[3]?.run_id).not.toBe(first?.run_id);
  });

  it('interrupted with SIGINT, leaves the trial in flight out of the summary pass rate', async () => {
    const database = join(scratch.path, 'interrupted.duckdb');
    const batch = startBatch(database, '62.7', ['--json']);
    const progress = await batch.twoDone;
    expect(await waitUntil(() => processWithArgument('sleep 62.7'), 60_000)).toBe(true);
    batch.child.kill('SIGINT');
    expect((await batch.exited).code).toBe(1);
    const done = progressCounts(progress);
    expect(batch.stderr()).toContain('Interrupted: 1 trial left unfinished');
    expect(batch.stderr()).toContain('and 1 not started');
    const output = JSON.parse(batch.stdout()) as RunJson & { notStarted: number };
    expect(output.interrupted).toBe(true);
    expect(output.notStarted).toBe(1);
    expect(output.summary.overall).toMatchObject({
      trials: 3,
      passed: done.passed,
      failed: done.failed,
      invalid: 0,
      unfinished: 1,
      passRate: done.passed / 2,
    });
    expect(output.results.map((trial) => [trial.task, trial.outcome === 'unfinished'])).toEqual([
      [TASKS[0], false],
      [TASKS[1], false],
      [IN_FLIGHT, true],
    ]);
    const runs = await sql<{ task: string; outcome: string }>(
      database,
      'SELECT task, outcome FROM runs ORDER BY first_seq',
    );
    expect(runs.map((run) => run.outcome)).toEqual(output.results.map((trial) => trial.outcome));
  });
});
