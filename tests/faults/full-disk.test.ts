import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateNativeEvents } from '../../bench/generate-events.js';
import { runCli } from '../support/cli.js';

/**
 * A disk that fills up during an ingest: the database lives on a 5 MiB tmpfs mounted in a private mount namespace
 * (`unshare --user --map-root-user --mount`, no privileges needed where user namespaces are allowed). The ingest stops
 * with a clear error, the log still opens and holds every batch committed before the disk filled, and the same ingest
 * run again where there is room adds exactly the rest.
 */

const BIN = resolve(import.meta.dirname, '../../cli/bin.js');
const EVENTS = 30_000;
const BATCH = 3_000;

function namespacesWork(): boolean {
  return spawnSync('unshare', ['--user', '--map-root-user', '--mount', 'true']).status === 0;
}

const skipReason = namespacesWork()
  ? undefined
  : 'unshare --user --mount is not allowed here (user namespaces disabled), so no tmpfs can be mounted';

if (skipReason !== undefined) console.warn(`skipping the full-disk tests: ${skipReason}`);

describe.skipIf(skipReason !== undefined)('a full disk during ingest', () => {
  let folder: string;
  let input: string;
  let mountPoint: string;
  let ingest: { status: number | null; stdout: string; stderr: string };
  let committed: { events: number; distinct: number };

  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'selfharness-full-disk-'));
    input = join(folder, 'events.ndjson');
    await generateNativeEvents(input, EVENTS);
    mountPoint = join(folder, 'small-disk');
    mkdirSync(mountPoint);
    const database = join(mountPoint, 'log.duckdb');
    const copy = join(folder, 'copied.duckdb');
    // Inside the namespace: mount the small disk, ingest onto it, count what is there, and copy the database out.
    const script = [
      `mount -t tmpfs -o size=5m tmpfs "${mountPoint}"`,
      `node "${BIN}" --db "${database}" ingest --batch-size ${BATCH} "${input}" > "${folder}/ingest.out" 2> "${folder}/ingest.err"`,
      `echo $? > "${folder}/ingest.status"`,
      `node "${BIN}" --db "${database}" --json sql "SELECT count(*) AS events, count(DISTINCT id) AS distinct_ids FROM events" > "${folder}/count.json"`,
      // The committed batches may still be in the write-ahead log beside the file: copy both.
      `cp "${database}" "${copy}"`,
      `if [ -e "${database}.wal" ]; then cp "${database}.wal" "${copy}.wal"; fi`,
    ].join('\n');
    const result = spawnSync('unshare', ['--user', '--map-root-user', '--mount', 'bash', '-c', script], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(result.status, result.stderr).toBe(0);
    const read = (name: string) => spawnSync('cat', [join(folder, name)], { encoding: 'utf8' }).stdout;
    ingest = { status: Number(read('ingest.status').trim()), stdout: read('ingest.out'), stderr: read('ingest.err') };
    const [row] = JSON.parse(read('count.json')) as { events: number; distinct_ids: number }[];
    committed = { events: row!.events, distinct: row!.distinct_ids };
  }, 180_000);
  afterAll(() => rmSync(folder, { recursive: true, force: true }));

  it('stops with one clear line that names the full disk and what to do, no stack trace', () => {
    expect(ingest.status).not.toBe(0);
    expect(ingest.stderr).toMatch(/error: .*disk.*full/i);
    expect(ingest.stderr).toContain(mountPoint);
    expect(ingest.stderr).toMatch(/run the same command again/i);
    expect(ingest.stderr).not.toMatch(/^\s+at /m);
  });

  it('leaves a log that opens and holds whole batches, each event once', () => {
    expect(committed.events).toBeGreaterThan(0);
    expect(committed.events).toBeLessThan(EVENTS);
    expect(committed.events % BATCH).toBe(0);
    expect(committed.distinct).toBe(committed.events);
  });

  it('adds exactly the rest when the same ingest runs again with room', async () => {
    const copy = join(folder, 'copied.duckdb');
    const again = await runCli(['--db', copy, '--json', 'ingest', '--batch-size', String(BATCH), input]);
    expect(again.code, again.stderr).toBe(0);
    const summary = JSON.parse(again.stdout) as { totals: { appended: number } };
    expect(summary.totals.appended).toBe(EVENTS - committed.events);
    const counted = await runCli([
      '--db',
      copy,
      '--json',
      'sql',
      'SELECT count(*) AS events, count(DISTINCT id) AS distinct_ids FROM events',
    ]);
    expect(JSON.parse(counted.stdout)).toEqual([{ events: EVENTS, distinct_ids: EVENTS }]);
    // The projections cover every run, those whose events were committed before the disk filled included.
    const runs = await runCli([
      '--db',
      copy,
      '--json',
      'sql',
      'SELECT (SELECT count(*) FROM runs) AS runs, (SELECT count(DISTINCT run_id) FROM events) AS run_ids, (SELECT sum(step_count) FROM runs) AS steps, (SELECT count(*) FROM steps) AS step_rows',
    ]);
    const [row] = JSON.parse(runs.stdout) as { runs: number; run_ids: number; steps: number; step_rows: number }[];
    expect(row!.runs).toBe(row!.run_ids);
    expect(row!.steps).toBe(row!.step_rows);
  });
});
