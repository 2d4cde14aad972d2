import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLog } from '../../core/index.js';
import { findBubblewrap, loadSuite } from '../../tasks/index.js';
import { runCli, startCli } from '../support/cli.js';
import { processWithArgument, waitUntil, writeSuite } from '../tasks/temporary-suite.js';

const hasBubblewrap = findBubblewrap() !== undefined;

let folder: string;
beforeAll(() => {
  folder = mkdtempSync(join(tmpdir(), 'selfharness-run-'));
});
afterAll(() => rmSync(folder, { recursive: true, force: true }));

async function readRuns(database: string) {
  const log = await EventLog.open(database, { readOnly: true });
  try {
    return await log.query<{ run_id: string; task: string; outcome: string }>(
      'SELECT run_id, task, outcome FROM runs ORDER BY first_seq',
    );
  } finally {
    log.close();
  }
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.on('close', (code) => resolve(code)));
}

/** A suite whose second task hangs until killed: its solution sleeps for a duration no other process uses. */
function suiteWithHangingTask(sleepSeconds: string): string {
  return writeSuite([
    { id: 'a-quick', solve: 'echo done > done.txt' },
    { id: 'b-slow', solve: `sleep ${sleepSeconds}; echo done > done.txt`, split: 'held-out' },
  ]);
}

describe('selfharness run without bubblewrap', () => {
  it('stops with the install command', async () => {
    const result = await runCli(['--db', join(folder, 'none.duckdb'), 'run', '--tasks', 'all', '--model', 'oracle'], {
      PATH: '/nonexistent',
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('bubblewrap (bwrap) is not installed');
    expect(result.stderr).toContain('apt-get install bubblewrap');
    expect(result.stderr).toContain('--unsafe-no-sandbox');
  });

  it('runs unsandboxed only when asked, with a warning', async () => {
    const suite = writeSuite([{ id: 'a-quick', solve: 'echo done > done.txt' }]);
    const result = await runCli([
      '--db',
      join(folder, 'unsafe.duckdb'),
      'run',
      '--suite',
      suite,
      '--tasks',
      'all',
      '--model',
      'oracle',
      '--unsafe-no-sandbox',
      '--json',
    ]);
    expect(result.stderr).toContain('warning: --unsafe-no-sandbox');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).summary.overall).toMatchObject({ passed: 1, passRate: 1 });
  });
});

describe.skipIf(!hasBubblewrap)('selfharness run', () => {
  it('passes every task of the suite with the oracle, in the sandbox', async () => {
    const database = join(folder, 'oracle.duckdb');
    const result = await runCli([
      '--db',
      database,
      'run',
      '--tasks',
      'all',
      '--model',
      'oracle',
      '--concurrency',
      '2',
      '--json',
    ]);
    expect(result.stderr).toContain('in bubblewrap sandboxes');
    const output = JSON.parse(result.stdout);
    const notPassed = output.results.filter((trial: { outcome: string }) => trial.outcome !== 'passed');
    expect(notPassed).toEqual([]);
    expect(result.code).toBe(0);
    const suite = loadSuite();
    expect(output.results).toHaveLength(suite.tasks.length);
    expect(output.summary.overall).toMatchObject({
      trials: suite.tasks.length,
      passRate: 1,
      invalid: 0,
      unfinished: 0,
    });
    expect(output.summary.rows.map((row: { split: string }) => row.split)).toEqual(['held-in', 'held-out', 'sealed']);
    const runs = await readRuns(database);
    expect(runs).toHaveLength(suite.tasks.length);
    expect(new Set(runs.map((run) => run.outcome))).toEqual(new Set(['passed']));
  });

  it('prints pass rates as a table', async () => {
    const suite = writeSuite([
      { id: 'a-quick', solve: 'echo done > done.txt' },
      { id: 'b-wrong', solve: 'echo nope > done.txt', split: 'held-out' },
    ]);
    const result = await runCli([
      '--db',
      join(folder, 'table.duckdb'),
      'run',
      '--suite',
      suite,
      '--tasks',
      'all',
      '--model',
      'oracle',
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/b-wrong\s+1\s+failed\s+tests_failed/);
    expect(result.stdout).toMatch(/held-in\s+1\s+1\s+0\s+100\.0%\s+0\s+0/);
    expect(result.stdout).toMatch(/held-out\s+1\s+0\s+1\s+0\.0%\s+0\s+0/);
    expect(result.stdout).toMatch(/all\s+2\s+1\s+1\s+50\.0%\s+0\s+0/);
  });

  it('leaves a consistent log when killed midway: the trial in flight is unfinished, a re-run is unaffected', async () => {
    const database = join(folder, 'killed.duckdb');
    const suite = suiteWithHangingTask('61.5');
    const child = startCli(['--db', database, 'run', '--suite', suite, '--tasks', 'all', '--model', 'oracle']);
    const code = exited(child);
    expect(await waitUntil(() => processWithArgument('sleep 61.5'), 30_000)).toBe(true);
    child.kill('SIGKILL');
    expect(await code).toBeNull();
    // The sandbox dies with the runner.
    expect(await waitUntil(() => !processWithArgument('sleep 61.5'))).toBe(true);
    const runs = await readRuns(database);
    expect(runs.map((run) => [run.task, run.outcome])).toEqual([
      ['a-quick', 'passed'],
      ['b-slow', 'unfinished'],
    ]);

    const rerun = await runCli([
      '--db',
      database,
      'run',
      '--suite',
      suite,
      '--tasks',
      'a-quick',
      '--model',
      'oracle',
      '--json',
    ]);
    expect(rerun.code).toBe(0);
    expect(JSON.parse(rerun.stdout).summary.overall).toMatchObject({ trials: 1, passed: 1, unfinished: 0 });
    const after = await readRuns(database);
    expect(after.map((run) => [run.task, run.outcome])).toEqual([
      ['a-quick', 'passed'],
      ['b-slow', 'unfinished'],
      ['a-quick', 'passed'],
    ]);
    expect(new Set(after.map((run) => run.run_id)).size).toBe(3);
    // The killed runner's scratch folders are cleaned up by the next run.
    expect(readdirSync(tmpdir()).filter((name) => name.startsWith(`selfharness-trial-${child.pid}-`))).toEqual([]);
  });

  it('on SIGINT stops the sandboxes, counts the trial in flight as unfinished and excludes it from rates', async () => {
    const database = join(folder, 'interrupted.duckdb');
    const suite = suiteWithHangingTask('62.5');
    const child = startCli([
      '--db',
      database,
      'run',
      '--suite',
      suite,
      '--tasks',
      'all',
      '--model',
      'oracle',
      '--json',
    ]);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk) => (stdout += chunk));
    child.stderr?.on('data', (chunk) => (stderr += chunk));
    const code = exited(child);
    expect(await waitUntil(() => processWithArgument('sleep 62.5'), 30_000)).toBe(true);
    child.kill('SIGINT');
    expect(await code).toBe(1);
    expect(stderr).toContain('Interrupted: 1 trial left unfinished');
    expect(processWithArgument('sleep 62.5')).toBe(false);
    expect(readdirSync(tmpdir()).filter((name) => name.startsWith(`selfharness-trial-${child.pid}-`))).toEqual([]);
    const output = JSON.parse(stdout);
    expect(output.summary.overall).toMatchObject({ trials: 2, passed: 1, failed: 0, unfinished: 1, passRate: 1 });
    const runs = await readRuns(database);
    expect(runs.map((run) => [run.task, run.outcome])).toEqual([
      ['a-quick', 'passed'],
      ['b-slow', 'unfinished'],
    ]);
  });

  it('rejects unknown tasks and bad counts before running anything', async () => {
    const unknown = await runCli([
      '--db',
      join(folder, 'bad.duckdb'),
      'run',
      '--tasks',
      'no-such-task',
      '--model',
      'oracle',
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('Unknown task or split "no-such-task"');
    const attempts = await runCli([
      '--db',
      join(folder, 'bad.duckdb'),
      'run',
      '--tasks',
      'all',
      '--model',
      'oracle',
      '--attempts',
      '0',
    ]);
    expect(attempts.code).toBe(2);
    expect(attempts.stderr).toContain('--attempts must be a whole number of at least 1');
  });
});
