import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLog } from '../../core/index.js';
import { findBubblewrap } from '../../tasks/index.js';
import { listPromotions, listValidations, readJobTrialRuns, trialKey } from '../../validator/index.js';
import { runCli, startCli } from '../support/cli.js';

const ARGS = [
  'improve',
  '--model',
  'sim:late-artifacts',
  '--iterations',
  '1',
  '--candidates',
  '5',
  '--gate',
  'paper',
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
    const promotions = (await listPromotions(log)).map((promotion) =>
      [promotion.versionId, promotion.previousVersionId, promotion.proposalIds.join(',')].join(' '),
    );
    return { decisions: decisions.sort(), runs, promotions };
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

  it('killed with SIGKILL at a trial, at the gate, in the merge and after the promotion, and run again each time, re-runs no finished trial and reaches the end state of an uninterrupted run', async () => {
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
    expect(expected.decisions.some((line) => line.endsWith('gate accepted'))).toBe(true);
    expect(expected.promotions).toHaveLength(1);

    // Each stop point, in the order the loop reaches them; the job is killed there, then started again.
    const stops = [
      { name: 'a trial of a candidate', pattern: /candidate \w+: [1-9]\d*\/\d+ trials/ },
      { name: 'the gate', pattern: /(accepted|rejected) by the \w+ gate/ },
      { name: 'the merge', pattern: /re-validating the merge/ },
      { name: 'the promotion', pattern: /is now current/ },
    ];
    for (const stop of stops) expect(uninterrupted.stderr, stop.name).toMatch(stop.pattern);

    const killed = join(folder, 'killed.duckdb');
    const finishedEarlier = new Set<string>();
    let trialsRunAfterKills = 0;
    for (const stop of stops) {
      const child = startCli(['--db', killed, ...ARGS, '--report', join(folder, 'report-killed')], {
        SELFHARNESS_PROGRESS_INTERVAL_MS: '0',
      });
      let stderr = '';
      await new Promise<void>((resolve, reject) => {
        child.stderr!.on('data', (chunk) => {
          stderr += chunk;
          if (stop.pattern.test(stderr)) child.kill('SIGKILL');
        });
        child.on('exit', () => resolve());
        child.on('error', reject);
      });
      expect(stderr, `killed at ${stop.name}`).toMatch(stop.pattern);
      const state = await decisionsOf(killed);
      for (const run of state.runs)
        if (run.outcome === 'passed' || run.outcome === 'failed') finishedEarlier.add(run.runId);
    }
    trialsRunAfterKills = finishedEarlier.size;

    const resumed = await runCli(['--db', killed, ...ARGS, '--report', join(folder, 'report-killed'), '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const after = await decisionsOf(killed);
    const finishedRuns = after.runs.filter((run) => run.outcome === 'passed' || run.outcome === 'failed');
    const perKey = new Map<string, number>();
    for (const run of finishedRuns) perKey.set(trialKey(run), (perKey.get(trialKey(run)) ?? 0) + 1);
    // No trial ran twice, every trial finished before a kill kept its run, and the last start ran only the rest.
    expect([...perKey.values()].every((count) => count === 1)).toBe(true);
    for (const runId of finishedEarlier) expect(finishedRuns.map((entry) => entry.runId)).toContain(runId);
    expect(JSON.parse(resumed.stdout).trialsRun).toBe(finishedRuns.length - trialsRunAfterKills);
    expect(perKey.size).toBe(
      expected.runs.filter((run) => run.outcome === 'passed' || run.outcome === 'failed').length,
    );
    // The same decisions and the same single promotion as the uninterrupted run.
    expect(after.decisions).toEqual(expected.decisions);
    expect(after.promotions).toEqual(expected.promotions);
  }, 420_000);

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
