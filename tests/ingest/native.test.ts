import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventLog } from '../../core/index.js';
import { ingestPaths } from '../../ingest/ingest.js';

const fixture = resolve(import.meta.dirname, '../fixtures/native/events.ndjson');

let log: EventLog;
beforeEach(async () => {
  log = await EventLog.open(':memory:');
});
afterEach(() => log.close());

describe('native NDJSON ingest', () => {
  it('loads every valid line and rejects the bad ones with file, line and reason', async () => {
    const summary = await ingestPaths(log, [fixture]);
    expect(summary.totals).toMatchObject({ units: 1, runs: 2, events: 7, appended: 7, rejects: 3 });
    const rejects = await log.query<{ file: string; position: string; reason: string; raw: string }>(
      'SELECT file, position, reason, raw FROM ingest_rejects ORDER BY position',
    );
    expect(rejects.map((reject) => [reject.position, reject.file])).toEqual([
      ['line 11', fixture],
      ['line 4', fixture],
      ['line 7', fixture],
    ]);
    expect(rejects[0]?.reason).toMatch(/^truncated last line/);
    expect(rejects[1]?.reason).toMatch(/^invalid JSON/);
    expect(rejects[1]?.raw).toContain('"id":"n1#result-1"');
    expect(rejects[2]?.reason).toBe(
      'event does not match its schema: data.step: Invalid input: expected number, received string',
    );
  });

  it('stores the source of every event: format, file and line', async () => {
    await ingestPaths(log, [fixture]);
    const rows = await log.query('SELECT source_format, source_file, source_position FROM events WHERE id = $1', [
      'n1#end',
    ]);
    expect(rows).toEqual([{ source_format: 'native', source_file: fixture, source_position: 'line 8' }]);
  });

  it('adds nothing and keeps no second copy of a reject when the same file is ingested again', async () => {
    await ingestPaths(log, [fixture]);
    const again = await ingestPaths(log, [join(fixture, '..')]);
    expect(again.totals).toMatchObject({ events: 7, appended: 0 });
    expect(await log.countEvents()).toBe(7);
    expect(await log.query('SELECT count(*)::INT AS n FROM ingest_rejects')).toEqual([{ n: 3 }]);
  });

  it('fills in the model and dataset a source lacks, and leaves the ones it names', async () => {
    await ingestPaths(log, [fixture], { model: 'model-x', dataset: 'override' });
    expect(await log.query('SELECT run_id, model, dataset FROM runs ORDER BY run_id')).toEqual([
      { run_id: 'native:n1', model: 'model-x', dataset: 'fixtures' },
      { run_id: 'native:n2', model: 'model-x', dataset: 'override' },
    ]);
  });

  it('refuses an unknown format and a missing path before reading anything', async () => {
    await expect(ingestPaths(log, [fixture], { format: 'nope' })).rejects.toThrow(
      /Unknown format "nope". Known formats: harbor, tb1, atif, swe-agent, swe-bench, otel, native\.$/,
    );
    await expect(ingestPaths(log, ['/no/such/file.ndjson'])).rejects.toThrow(
      'Cannot ingest /no/such/file.ndjson: no such file or directory.',
    );
    expect(await log.countEvents()).toBe(0);
  });
});
