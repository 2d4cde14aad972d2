import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLog } from '../../core/index.js';
import { findBubblewrap } from '../../tasks/index.js';
import { listValidations, readJobTrialRuns, trialKey } from '../../validator/index.js';
import { runCli, startCli } from '../support/cli.js';

const ARGS = [
  'improve',
  '--model',
  'sim:late-artifacts',
  '--iterations',
  '1',
  '--candidates',
  '3',
  '--attempts',
  '1',
  '--seed',
  '0',
  '--concurrency',
  '2',
  '--held-in',
  'archive-merge-csv,dedupe-emails,fix-spaces-in-names,ini-update,release-checksums,count-words',
  '--held-out',
  'file-manifest,extract-errors',
  '--sealed',
  'none',
  '--max-passing-fire-rate',
  '1',
  '--job',
  'cli-job',
];

async function decisionsOf(db: string) {
  const log = await EventLog.open(db, { readOnly: true });
  try {
    const decisions = (await listValidations(log)).map((decision) =>
      [decision.proposalId, decision.stage, decision.decision].join(' '),
    );
    const runs = await readJobTrialRuns(log, 'cli-job');
    return { decisions: decisions.sort(), runs };
  } finally {
    log.close();
  }
}

describe.skipIf(findBubblewrap() === undefined)('selfharness improve', () => {
  let folder: string;
  beforeAll(() => {
    folder = mkdtempSync(join(tmpdir(), 'selfharness-improve-cli-'));
  });
  afterAll(() => rmSync(folder, { recursive: true, force: true }));

  it('killed with SIGKILL mid-validation and run again, re-runs no finished trial and reaches the decisions of an uninterrupted run', async () => {
    const whole = join(folder, 'whole.duckdb');
    const report = join(folder, 'report-whole');
    const uninterrupted = await runCli(['--db', whole, ...ARGS, '--report', report, '--json']);
    expect(uninterrupted.code, uninterrupted.stderr).toBe(0);
    const result = JSON.parse(uninterrupted.stdout);
    expect(result.jobId).toBe('cli-job');
    expect(uninterrupted.stderr).toContain('improve job cli-job');
    expect(existsSync(join(report, 'report.md'))).toBe(true);
    const html = readFileSync(join(report, 'report.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('no claim about real models');
    const expected = await decisionsOf(whole);
    expect(expected.decisions.some((line) => line.endsWith('gate accepted') || line.endsWith('gate rejected'))).toBe(
      true,
    );

    const killed = join(folder, 'killed.duckdb');
    const child = startCli(['--db', killed, ...ARGS, '--report', join(folder, 'report-killed')], {
      SELFHARNESS_PROGRESS_INTERVAL_MS: '0',
    });
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr!.on('data', (chunk) => {
        stderr += chunk;
        // Some trials of a candidate are in the log: kill it in the middle of validation.
        if (/candidate \w+: [1-9]\d*\/\d+ trials/.test(stderr)) {
          child.kill('SIGKILL');
        }
      });
      child.on('exit', () => resolve());
      child.on('error', reject);
    });
    expect(stderr).toMatch(/candidate \w+: [1-9]\d*\/\d+ trials/);
    const before = await decisionsOf(killed);
    const finishedBefore = before.runs.filter((run) => run.outcome === 'passed' || run.outcome === 'failed');

    const resumed = await runCli(['--db', killed, ...ARGS, '--report', join(folder, 'report-killed'), '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const after = await decisionsOf(killed);
    const finishedRuns = after.runs.filter((run) => run.outcome === 'passed' || run.outcome === 'failed');
    const perKey = new Map<string, number>();
    for (const run of finishedRuns) perKey.set(trialKey(run), (perKey.get(trialKey(run)) ?? 0) + 1);
    expect([...perKey.values()].every((count) => count === 1)).toBe(true);
    // Every trial finished before the kill kept its run; the resumed job ran only the rest.
    for (const run of finishedBefore) expect(finishedRuns.map((entry) => entry.runId)).toContain(run.runId);
    expect(JSON.parse(resumed.stdout).trialsRun).toBe(finishedRuns.length - finishedBefore.length);
    expect(perKey.size).toBe(
      expected.runs.filter((run) => run.outcome === 'passed' || run.outcome === 'failed').length,
    );
    expect(after.decisions).toEqual(expected.decisions);
  }, 300_000);

  it('refuses bad options with a clear message', async () => {
    const db = join(folder, 'bad.duckdb');
    const gate = await runCli(['--db', db, 'improve', '--model', 'sim:clean', '--gate', 'lenient']);
    expect(gate.code).toBe(2);
    expect(gate.stderr).toContain('Unknown --gate "lenient": use strict or paper.');
    const task = await runCli(['--db', db, 'improve', '--model', 'sim:clean', '--held-out', 'count-words']);
    expect(task.code).toBe(2);
    expect(task.stderr).toContain('Task count-words is not in the held-out split');
    const job = await runCli(['--db', db, 'improve', '--model', 'sim:clean', '--job', 'a b']);
    expect(job.code).toBe(2);
    expect(job.stderr).toContain('Job id "a b" is not valid');
  });
});
