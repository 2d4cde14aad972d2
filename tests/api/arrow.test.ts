import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataType, Table, TimestampMillisecond, tableFromIPC, tableToIPC, Utf8, vectorFromArray } from 'apache-arrow';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../../api/index.js';
import { EventLog, type TraceEvent } from '../../core/index.js';
import { sampleRun } from '../support/events.js';
import { type ServedApp, serveApp } from '../support/http-app.js';

let folder: string;
let log: EventLog;
let server: ServedApp;

beforeEach(async () => {
  folder = mkdtempSync(join(tmpdir(), 'selfharness-api-arrow-'));
  log = await EventLog.open(join(folder, 'log.duckdb'));
  const app = createApp({ log });
  server = await serveApp(app);
});

afterEach(async () => {
  await server.stop();
  log.close();
  rmSync(folder, { recursive: true, force: true });
});

/** One row per event, as a pandas or polars user would build it: string columns, `data` as JSON text. */
function eventTable(rows: { id: string; type: string; runId: string; time: Date | null; data: string | null }[]) {
  return new Table({
    id: vectorFromArray(
      rows.map((row) => row.id),
      new Utf8(),
    ),
    type: vectorFromArray(
      rows.map((row) => row.type),
      new Utf8(),
    ),
    runId: vectorFromArray(
      rows.map((row) => row.runId),
      new Utf8(),
    ),
    time: vectorFromArray(
      rows.map((row) => row.time),
      new TimestampMillisecond(),
    ),
    data: vectorFromArray(
      rows.map((row) => row.data),
      new Utf8(),
    ),
  });
}

function rowsOf(events: readonly TraceEvent[]) {
  return events.map((event) => ({
    id: event.id,
    type: event.type,
    runId: event.runId,
    time: event.time === undefined ? null : new Date(event.time),
    data: JSON.stringify(event.data),
  }));
}

async function postArrow(table: Table | Uint8Array): Promise<Response> {
  return fetch(`${server.url}/v1/events`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/vnd.apache.arrow.stream' },
    body: table instanceof Uint8Array ? table : tableToIPC(table, 'stream'),
  });
}

async function sqlArrow(sql: string, query = '?format=arrow', headers: Record<string, string> = {}) {
  const response = await fetch(`${server.url}/v1/sql${query}`, {
    method: 'POST',
    headers: { 'Content-Type': 'text/plain', ...headers },
    body: sql,
  });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe('application/vnd.apache.arrow.stream');
  return { response, table: tableFromIPC(new Uint8Array(await response.arrayBuffer())) };
}

describe('POST /v1/events with an Arrow IPC stream', () => {
  it('appends one event per row, answers per row like NDJSON, keeps bad rows, and a resend adds nothing', async () => {
    const good = rowsOf([...sampleRun('arrow-a', 'failed'), ...sampleRun('arrow-b', 'passed')]);
    const rows = [
      ...good.slice(0, 3),
      { id: 'bad-json', type: 'step-create', runId: 'arrow-a', time: null, data: '{"step": 9,' },
      { id: 'bad-schema', type: 'step-create', runId: 'arrow-a', time: null, data: '{"role": "agent"}' },
      { id: 'no-data', type: 'run-end', runId: 'arrow-a', time: null, data: null },
      ...good.slice(3),
    ];
    const response = await postArrow(eventTable(rows));
    expect(response.status).toBe(200);
    const receipt = (await response.json()) as {
      accepted: number;
      duplicates: number;
      rejected: { row: number; reason: string }[];
    };
    expect(receipt.accepted).toBe(good.length);
    expect(receipt.rejected.map((reject) => reject.row)).toEqual([3, 4, 5]);
    expect(receipt.rejected[0]?.reason).toMatch(/^column data is not JSON/);
    expect(receipt.rejected[1]?.reason).toMatch(/does not match its schema: data\.step/);
    expect(receipt.rejected[2]?.reason).toMatch(/column data is null/);
    const kept = await log.query<{ format: string; position: string; raw: string }>(
      'SELECT format, position, raw FROM ingest_rejects ORDER BY position',
    );
    expect(kept.map((reject) => [reject.format, reject.position])).toEqual([
      ['http', 'row 3'],
      ['http', 'row 4'],
      ['http', 'row 5'],
    ]);
    expect(JSON.parse(kept[0]?.raw ?? '{}')).toMatchObject({ id: 'bad-json', data: '{"step": 9,' });
    const runs = await log.query<{ run_id: string; outcome: string; started_at: Date | null }>(
      'SELECT run_id, outcome, started_at FROM runs ORDER BY run_id',
    );
    expect(runs.map((run) => [run.run_id, run.outcome])).toEqual([
      ['arrow-a', 'failed'],
      ['arrow-b', 'passed'],
    ]);
    const times = await log.query<{ time: Date }>("SELECT time FROM events WHERE id = 'arrow-a#step-1'");
    expect(times[0]?.time.toISOString()).toBe('2026-01-01T00:00:01.000Z');

    const again = await postArrow(eventTable(good));
    expect(await again.json()).toEqual({ accepted: 0, duplicates: good.length, rejected: [] });
  });

  it('refuses a body that is not Arrow, and a table without the event columns, naming them', async () => {
    const broken = await postArrow(new TextEncoder().encode('{"id": "not arrow"}'));
    expect(broken.status).toBe(400);
    expect(((await broken.json()) as { detail: string }).detail).toMatch(/not an Arrow IPC stream/);
    const table = new Table({
      id: vectorFromArray(['a'], new Utf8()),
      run_id: vectorFromArray(['r'], new Utf8()),
    });
    const missing = await postArrow(table);
    expect(missing.status).toBe(400);
    const detail = ((await missing.json()) as { detail: string }).detail;
    expect(detail).toMatch(/lacks the columns type, runId, data; it has id, run_id/);
    expect(Number((await log.query<{ n: bigint }>('SELECT count(*) AS n FROM events'))[0]?.n)).toBe(0);
  });
});

describe('POST /v1/sql as Arrow', () => {
  it('keeps the types of integers, doubles, strings, timestamps, booleans, dates and decimals, with nulls', async () => {
    const { table } = await sqlArrow(
      `SELECT i::BIGINT AS n, i::INTEGER AS small, i / 4 AS ratio, 'run-' || i AS name, 'a string longer than twelve bytes ' || i AS long_text,
              TIMESTAMPTZ '2026-01-02 03:04:05+00' + to_seconds(i) AS at, DATE '2026-01-01' + i::INTEGER AS day,
              i % 2 = 0 AS even, CASE WHEN i % 3 = 0 THEN NULL ELSE i END AS sometimes, sum(i) OVER () AS total,
              (i * 1.25)::DECIMAL(10, 2) AS price, [i, i + 1] AS pair, {'k': i} AS record
       FROM range(4) r(i) ORDER BY i`,
    );
    const types = Object.fromEntries(table.schema.fields.map((field) => [field.name, String(field.type)]));
    expect(types).toEqual({
      n: 'Int64',
      small: 'Int32',
      ratio: 'Float64',
      name: 'Utf8',
      long_text: 'Utf8',
      at: 'Timestamp<MICROSECOND, UTC>',
      day: 'Date32<DAY>',
      even: 'Bool',
      sometimes: 'Int64',
      total: 'Decimal[38e0]',
      price: 'Decimal[10e+2]',
      pair: 'Utf8',
      record: 'Utf8',
    });
    expect(table.numRows).toBe(4);
    const row = (index: number) => table.get(index)?.toJSON() as Record<string, unknown>;
    expect(row(1)).toMatchObject({
      n: 1n,
      small: 1,
      ratio: 0.25,
      name: 'run-1',
      long_text: 'a string longer than twelve bytes 1',
      at: Date.UTC(2026, 0, 2, 3, 4, 6),
      day: Date.UTC(2026, 0, 2),
      even: false,
      sometimes: 1n,
      pair: '[1,2]',
      record: '{"k":1}',
    });
    expect(row(0).sometimes).toBeNull();
    expect(row(3).sometimes).toBeNull();
    expect(DataType.isDecimal(table.schema.fields[9]?.type)).toBe(true);
    const total = table.getChild('total')?.get(0) as Uint32Array;
    expect(total[0]).toBe(6);
    const price = table.getChild('price')?.get(3) as Uint32Array;
    expect(price[0]).toBe(375);
  });

  it('returns the same rows as JSON for a result of many chunks with nulls, and honours Accept and ?limit=', async () => {
    const sql = `SELECT i AS id, CASE WHEN i % 7 = 0 THEN NULL ELSE 'name-' || i END AS name,
                        CASE WHEN i % 5 = 0 THEN NULL ELSE i * 0.5 END::DOUBLE AS half,
                        CASE WHEN i % 11 = 0 THEN NULL ELSE TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(i) END AS at
                 FROM range(20000) r(i) ORDER BY i`;
    const { response, table } = await sqlArrow(sql, '?limit=15000', { Accept: 'application/vnd.apache.arrow.stream' });
    expect(response.headers.get('x-truncated')).toBe('true');
    expect(table.numRows).toBe(15000);
    const json = await fetch(`${server.url}/v1/sql?limit=15000`, { method: 'POST', body: sql });
    const body = (await json.json()) as {
      rows: { id: number; name: string | null; half: number | null; at: string | null }[];
    };
    expect(body.rows.length).toBe(15000);
    const ids = table.getChild('id');
    const names = table.getChild('name');
    const halves = table.getChild('half');
    const times = table.getChild('at');
    let mismatches = 0;
    body.rows.forEach((row, index) => {
      const at = times?.get(index) as number | null;
      if (
        Number(ids?.get(index)) !== row.id ||
        names?.get(index) !== row.name ||
        halves?.get(index) !== row.half ||
        (at === null ? null : new Date(at).toISOString()) !== row.at
      ) {
        mismatches++;
      }
    });
    expect(mismatches).toBe(0);
    expect(names?.nullCount).toBe(Math.ceil(15000 / 7));
  });

  it('sends the schema of an empty result', async () => {
    const { table } = await sqlArrow("SELECT 1::INTEGER AS one, 'x' AS text WHERE false");
    expect(table.numRows).toBe(0);
    expect(table.schema.fields.map((field) => `${field.name}:${field.type}`)).toEqual(['one:Int32', 'text:Utf8']);
  });
});
