import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateNativeEvents } from '../../bench/generate-events.js';
import { runCli, startCli } from '../support/cli.js';

const fixtures = resolve(import.meta.dirname, '../fixtures');

describe('selfharness ingest, sql and rebuild from the command line', () => {
  let folder: string;
  beforeAll(() => {
    folder = mkdtempSync(join(tmpdir(), 'selfharness-cli-'));
  });

  it('ingests, prints a summary per format, and adds nothing the second time', async () => {
    const db = join(folder, 'a.duckdb');
    const first = await runCli(['--db', db, '--json', 'ingest', join(fixtures, 'native')]);
    expect(first.code).toBe(0);
    const summary = JSON.parse(first.stdout);
    expect(summary.totals).toMatchObject({ runs: 2, events: 7, appended: 7, rejects: 3 });
    expect(summary.rejects[0]).toMatchObject({ position: 'line 4', reason: expect.stringMatching(/^invalid JSON/) });

    const second = await runCli(['--db', db, 'ingest', join(fixtures, 'native')]);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('0 new events (7 already in the log)');

    const query = await runCli([
      '--db',
      db,
      '--json',
      'sql',
      'select outcome, count(*) as n from runs group by all order by outcome',
    ]);
    expect(JSON.parse(query.stdout)).toEqual([
      { outcome: 'failed', n: 1 },
      { outcome: 'passed', n: 1 },
    ]);

    const rebuild = await runCli(['--db', db, '--json', 'rebuild']);
    expect(JSON.parse(rebuild.stdout).tables.every((table: { unchanged: boolean }) => table.unchanged)).toBe(true);
  });

  it('takes the database from SELFHARNESS_DB', async () => {
    const db = join(folder, 'from-env.duckdb');
    const result = await runCli(['ingest', join(fixtures, 'native')], { SELFHARNESS_DB: db });
    expect(result.code).toBe(0);
    expect(existsSync(db)).toBe(true);
  });

  it('explains a bad query, a missing path and a wrong format in one line, without a stack trace', async () => {
    const db = join(folder, 'errors.duckdb');
    await runCli(['--db', db, 'ingest', join(fixtures, 'native')]);
    const query = await runCli(['--db', db, 'sql', 'select nope from runs']);
    expect(query.code).toBe(2);
    expect(query.stderr).toMatch(/^error: Query failed: Binder Error: Referenced column "nope" not found/);
    const missing = await runCli(['--db', db, 'ingest', '/no/such/dir']);
    expect(missing.stderr.trim()).toBe('error: Cannot ingest /no/such/dir: no such file or directory.');
    const format = await runCli(['--db', db, 'ingest', '--format', 'xml', join(fixtures, 'native')]);
    expect(format.stderr).toMatch(/^error: Unknown format "xml"\. Known formats: /);
    for (const result of [query, missing, format]) expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('killed with SIGKILL mid-ingest and run again, holds exactly the events of an uninterrupted run', async () => {
    const input = join(folder, 'many.ndjson');
    const total = 500_000;
    await generateNativeEvents(input, total);
    const db = join(folder, 'killed.duckdb');
    const batch = 20_000;
    const child = startCli(['--db', db, 'ingest', '--batch-size', String(batch), input], {
      SELFHARNESS_PROGRESS_INTERVAL_MS: '0',
    });
    await new Promise<void>((resolvePromise, reject) => {
      let stderr = '';
      child.stderr?.on('data', (chunk) => {
        stderr += chunk;
        const counts = [...stderr.matchAll(/([\d,]+) events/g)].map((match) => Number(match[1]?.replaceAll(',', '')));
        // Three batches read means the first one is committed (one append is in flight at most).
        if (counts.some((count) => count >= 3 * batch)) {
          child.stderr?.removeAllListeners('data');
          child.removeAllListeners('exit');
          resolvePromise();
        }
      });
      child.on('exit', () => reject(new Error(`ingest ended before it could be killed: ${stderr}`)));
    });
    // While it runs, another command on the same file says who holds it instead of failing obscurely.
    const blocked = await runCli(['--db', db, 'sql', 'select 1']);
    expect(blocked.code).toBe(2);
    expect(blocked.stderr).toMatch(
      /^error: Database .*killed\.duckdb is in use by another process \(.*PID \d+.*\)\. Wait for it to finish, or pass another --db PATH\./,
    );
    const exited = new Promise((resolvePromise) => child.on('exit', resolvePromise));
    child.kill('SIGKILL');
    await exited;

    const midway = await runCli(['--db', db, '--json', 'sql', 'select count(*) as n from events']);
    const partial = JSON.parse(midway.stdout)[0].n;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(total);

    const resumed = await runCli(['--db', db, '--json', 'ingest', input]);
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.stdout).totals.appended).toBe(total - partial);
    const after = await runCli([
      '--db',
      db,
      '--json',
      'sql',
      'select count(*) as n, count(distinct id) as ids, max(seq) as last from events',
    ]);
    expect(JSON.parse(after.stdout)).toEqual([{ n: total, ids: total, last: total }]);
    const runs = await runCli(['--db', db, '--json', 'sql', 'select count(*) as n from runs']);
    expect(JSON.parse(runs.stdout)).toEqual([{ n: total / 100 }]);
  });
});
