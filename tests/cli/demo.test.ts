import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findBubblewrap } from '../../tasks/index.js';
import { runCli } from '../support/cli.js';

describe('selfharness demo', () => {
  it('loads the bundled sample traces of every format and lists the broken records with their reasons', async () => {
    const db = join(mkdtempSync(join(tmpdir(), 'selfharness-demo-')), 'demo.duckdb');
    const result = await runCli(['--db', db, '--json', 'demo', '--samples-only']);
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
    const again = await runCli(['--db', db, '--json', 'demo', '--samples-only']);
    expect(JSON.parse(again.stdout).outcomes).toEqual(report.outcomes);
  });

  it.skipIf(findBubblewrap() === undefined)(
    'runs the improve loop on three simulated profiles in its quick form and prints a before/after table',
    async () => {
      const folder = mkdtempSync(join(tmpdir(), 'selfharness-demo-'));
      const db = join(folder, 'demo.duckdb');
      const report = join(folder, 'reports');
      const text = await runCli(['--db', db, 'demo', '--quick', '--report', report]);
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toMatch(/profile\s+held-in\s+held-out\s+sealed\s+accepted edits/);
      for (const profile of ['late-artifacts', 'blind-retry', 'lost-state']) {
        expect(text.stdout).toMatch(new RegExp(`sim:${profile}\\s+\\d+% → \\d+%`));
        expect(existsSync(join(report, profile, 'report.html'))).toBe(true);
      }
      expect(text.stdout).toContain('test double');
      expect(text.stdout).toContain('no claim about real models');
      expect(text.stderr).toContain('improve job demo-late-artifacts');
    },
    300_000,
  );
});
