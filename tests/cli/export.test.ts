import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { beforeAll, describe, expect, it } from 'vitest';
import { prepareAnalytics } from '../../analytics/schema.js';
import { appendGeneratedRuns } from '../../bench/generate-runs.js';
import { EventLog } from '../../core/index.js';
import { runCli } from '../support/cli.js';

describe('selfharness export --parquet', () => {
  let folder: string;
  let db: string;

  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'selfharness-export-'));
    db = join(folder, 'log.duckdb');
    const log = await EventLog.open(db);
    await appendGeneratedRuns(log, { runs: 40, seed: 3 });
    log.close();
  }, 60_000);

  it('writes every table and view as Parquet that a separate DuckDB reads back with the same counts', async () => {
    const out = join(folder, "out dir's");
    const result = await runCli(['--db', db, '--json', 'export', '--parquet', out]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(JSON.parse(result.stdout)).toEqual(manifest);
    const names = manifest.relations.map((relation: { name: string }) => relation.name);
    expect(names).toEqual(
      expect.arrayContaining(['events', 'runs', 'steps', 'tool_calls', 'verifications', 'ingest_rejects']),
    );
    expect(names).toEqual(
      expect.arrayContaining(['run_summary', 'failed_runs', 'detected_mechanisms', 'model_profiles']),
    );

    // The log as selfharness reads it (with the views), and a separate DuckDB that knows nothing but the files.
    const source = await EventLog.open(db, { readOnly: true });
    await prepareAnalytics(source.database);
    const reader = await DuckDBInstance.create(':memory:');
    const readerConnection = await reader.connect();
    try {
      for (const relation of manifest.relations as { name: string; file: string; rows: number }[]) {
        const file = join(out, relation.file);
        expect(existsSync(file)).toBe(true);
        const read = await readerConnection.runAndReadAll(`SELECT count(*) AS n FROM read_parquet($1)`, [file]);
        const [original] = await source.query<{ n: bigint }>(`SELECT count(*) AS n FROM ${relation.name}`);
        const readRows = Number(read.getRowObjectsJS()[0]?.n);
        expect([relation.name, readRows]).toEqual([relation.name, Number(original?.n)]);
        expect(readRows).toBe(relation.rows);
      }
      const events = manifest.relations.find((relation: { name: string }) => relation.name === 'events');
      expect(events.rows).toBeGreaterThan(3000);
      const mechanisms = await readerConnection.runAndReadAll(
        `SELECT count(DISTINCT mechanism) AS n, min(len(evidence_steps)) AS shortest FROM read_parquet($1)`,
        [join(out, 'detected_mechanisms.parquet')],
      );
      expect(Number(mechanisms.getRowObjectsJS()[0]?.n)).toBeGreaterThan(5);
    } finally {
      readerConnection.closeSync();
      reader.closeSync();
      source.close();
    }
  }, 60_000);

  it('names a folder it cannot create', async () => {
    const blocker = join(folder, 'log.duckdb', 'sub');
    const result = await runCli(['--db', db, 'export', '--parquet', blocker]);
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe(
      `error: Cannot create export folder ${blocker}: ENOTDIR. Pass another --parquet DIR.`,
    );
  });
});
