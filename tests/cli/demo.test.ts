import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';

describe('selfharness demo', () => {
  it('loads the bundled sample traces of every format and lists the broken records with their reasons', async () => {
    const db = join(mkdtempSync(join(tmpdir(), 'selfharness-demo-')), 'demo.duckdb');
    const result = await runCli(['--db', db, '--json', 'demo']);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.outcomes.map((row: { format: string }) => row.format)).toEqual([
      'atif',
      'harbor',
      'native',
      'otel',
      'swe-agent',
      'swe-bench',
      'tb1',
    ]);
    expect(report.summary.totals.appended).toBeGreaterThan(100);
    expect(report.rejects.length).toBe(report.summary.totals.rejects);
    for (const reject of report.rejects)
      expect(reject).toMatchObject({
        file: expect.any(String),
        position: expect.any(String),
        reason: expect.any(String),
      });
    const again = await runCli(['--db', db, '--json', 'demo']);
    expect(JSON.parse(again.stdout).outcomes).toEqual(report.outcomes);
  });
});
