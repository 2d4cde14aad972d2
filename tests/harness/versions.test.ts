import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EventLog } from '../../core/index.js';
import {
  applySpecPatch,
  computeVersionId,
  defaultHarnessSpec,
  type HarnessSpec,
  listVersions,
  registerVersion,
  resolveVersion,
} from '../../harness/index.js';
import { runCli } from '../support/cli.js';

function edited(patch: unknown[]): HarnessSpec {
  const result = applySpecPatch(defaultHarnessSpec, patch);
  if (!result.ok) throw new Error(result.reasons.join('; '));
  return result.spec;
}

describe('harness versions in the log', () => {
  it('are stored once per spec in the stream harness:<id>, and resolved by default, id or unique prefix', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'selfharness-versions-'));
    const log = await EventLog.open(join(folder, 'log.duckdb'));
    try {
      const base = await resolveVersion(log, 'default');
      expect(base.versionId).toBe(computeVersionId(defaultHarnessSpec));
      const child = edited([{ op: 'add', path: '/middleware/-', value: { name: 'persistent-shell' } }]);
      const first = await registerVersion(log, child, { parentId: base.versionId, description: 'keep shell state' });
      const again = await registerVersion(log, child, { parentId: base.versionId });
      expect([first.created, again.created]).toEqual([true, false]);
      const rows = await log.query<{ run_id: string; id: string }>(
        "SELECT run_id, id FROM events WHERE type = 'harness-version-create' ORDER BY seq",
      );
      expect(rows).toEqual([
        { run_id: `harness:${base.versionId}`, id: `harness-version:${base.versionId}` },
        { run_id: `harness:${first.version.versionId}`, id: `harness-version:${first.version.versionId}` },
      ]);
      expect((await listVersions(log)).map((version) => version.parentId)).toEqual([undefined, base.versionId]);
      expect((await resolveVersion(log, first.version.versionId.slice(0, 6))).spec).toEqual(child);
      // Versions are events, not runs: the runs table stays empty.
      expect(await log.query('SELECT * FROM runs')).toEqual([]);
      await expect(registerVersion(log, child, { parentId: 'abcdef123456' })).rejects.toThrow(
        /Unknown parent harness version abcdef123456/,
      );
    } finally {
      log.close();
    }
  });
});

describe('selfharness harness', () => {
  it('shows, exports, imports, lists and diffs versions', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'selfharness-harness-cli-'));
    const db = join(folder, 'log.duckdb');
    const cli = (...args: string[]) => runCli(['--db', db, ...args]);

    const shown = await cli('--json', 'harness', 'show');
    expect(shown.code).toBe(0);
    const base = JSON.parse(shown.stdout);
    expect(base.versionId).toBe(computeVersionId(defaultHarnessSpec));
    expect(base.spec).toEqual(defaultHarnessSpec);

    const exported = join(folder, 'base.json');
    expect((await cli('harness', 'export', 'default', '--out', exported)).stdout).toMatch(
      new RegExp(`Wrote harness version ${base.versionId} to `),
    );
    const spec = JSON.parse(readFileSync(exported, 'utf8'));
    spec.middleware.push({ name: 'persistent-shell' });
    spec.budgets.maxTurns = 80;
    const changedFile = join(folder, 'changed.json');
    writeFileSync(changedFile, JSON.stringify(spec));

    const imported = await cli('harness', 'import', changedFile, '--parent', 'default', '--description', 'keep state');
    const childId = computeVersionId(spec);
    expect(imported.stdout.trim()).toBe(`Registered harness version ${childId} (parent ${base.versionId})`);

    const listed = JSON.parse((await cli('--json', 'harness', 'log')).stdout);
    expect(
      listed.map((row: { version: string; parent: string | null; description: string | null }) => [
        row.version,
        row.parent,
        row.description,
      ]),
    ).toEqual([
      [base.versionId, null, 'the built-in default harness'],
      [childId, base.versionId, 'keep state'],
    ]);

    const diff = await cli('harness', 'diff', base.versionId.slice(0, 5), childId.slice(0, 5));
    expect(diff.stdout).toContain('~ /budgets/maxTurns: 50 → 80');
    expect(diff.stdout).toContain('+ /middleware/0: {"name":"persistent-shell"}');
    expect(diff.stdout.trim().split('\n')).toHaveLength(4);

    const roundTrip = await cli('harness', 'export', childId);
    expect(JSON.parse(roundTrip.stdout)).toEqual(spec);
  }, 120_000);

  it('explains unknown, ambiguous and malformed versions and spec files', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'selfharness-harness-errors-'));
    const db = join(folder, 'log.duckdb');
    const cli = (...args: string[]) => runCli(['--db', db, ...args]);
    // Two specs whose ids start with the same character, to make a one-character prefix ambiguous.
    const candidates = Array.from({ length: 40 }, (_, index) =>
      edited([{ op: 'replace', path: '/budgets/maxTurns', value: 100 + index }]),
    );
    const byFirst = new Map<string, HarnessSpec[]>();
    for (const candidate of candidates) {
      const key = computeVersionId(candidate)[0]!;
      byFirst.set(key, [...(byFirst.get(key) ?? []), candidate]);
    }
    const [prefix, pair] = [...byFirst.entries()].find(([, specs]) => specs.length >= 2)!;
    const log = await EventLog.open(db);
    try {
      for (const candidate of pair.slice(0, 2)) await registerVersion(log, candidate);
      await expect(resolveVersion(log, 'ffffffffffff')).rejects.toThrow(
        /Unknown harness version ffffffffffff: list versions with `selfharness harness log`/,
      );
      await expect(resolveVersion(log, 'latest!')).rejects.toThrow(
        /is not a version id: give `default` or a hex id prefix/,
      );
    } finally {
      log.close();
    }
    const ambiguous = await cli('harness', 'show', prefix);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toMatch(
      new RegExp(`prefix ${prefix} is ambiguous: it matches [0-9a-f]{12}, [0-9a-f]{12}; give more characters`),
    );

    const badSpec = join(folder, 'bad.json');
    writeFileSync(
      badSpec,
      JSON.stringify({ ...defaultHarnessSpec, budgets: { ...defaultHarnessSpec.budgets, maxTurns: 'many' } }),
    );
    const invalid = await cli('harness', 'import', badSpec);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain(`Invalid harness spec ${badSpec}: /budgets/maxTurns:`);
    const notJson = join(folder, 'not.json');
    writeFileSync(notJson, '{ "schemaVersion": 1,');
    expect((await cli('harness', 'import', notJson)).stderr).toContain(`${notJson} is not valid JSON`);
  }, 120_000);
});
