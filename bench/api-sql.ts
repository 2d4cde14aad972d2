/**
 * `POST /v1/sql` benchmark: pulls one large result (1M rows by default) over real HTTP as JSON, CSV and Arrow, and
 * compares each with the same query run directly on DuckDB in this process. The rows come from a view over a log of
 * generated events (bench/generate-events.ts): the events table repeated with `range()`, so the values are those of
 * real events (ids, types, run ids, times, step numbers, exit codes) without importing a million of them first.
 *
 *   npm run bench:api [-- --rows 1000000 --repeat 2 --with-data]
 *
 * Each client reads the whole body and decodes it as a user would (JSON.parse, splitting CSV lines, tableFromIPC).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { serve } from '@hono/node-server';
import { tableFromIPC } from 'apache-arrow';
import { createApp } from '../api/index.js';
import { EventLog } from '../core/index.js';
import { ingestPaths } from '../ingest/ingest.js';
import { generateNativeEvents } from './generate-events.js';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    events: { type: 'string', default: '10000' },
    repeat: { type: 'string', default: '2' },
    'with-data': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const rows = Number(values.rows);
const events = Number(values.events);
const repeat = Math.max(1, Number(values.repeat));
const copies = Math.ceil(rows / events);

const folder = mkdtempSync(join(tmpdir(), 'selfharness-bench-api-'));
const input = join(folder, 'events.ndjson');
console.error(`generating and importing ${events} events …`);
await generateNativeEvents(input, events);
const log = await EventLog.open(join(folder, 'log.duckdb'));
await ingestPaths(log, [input]);
await log.database.run(`
CREATE VIEW bench_events AS
SELECT e.seq + copy.i * ${events} AS seq, e.id, e.type, e.run_id || '/' || copy.i AS run_id, e.time + to_seconds(copy.i) AS time,
       CAST(e.data->>'$.step' AS INTEGER) AS step, CAST(e.data->>'$.exitCode' AS INTEGER) AS exit_code,
       e.type = 'tool-result' AND CAST(e.data->>'$.exitCode' AS INTEGER) = 0 AS succeeded,
       CAST(e.data->>'$.promptTokens' AS DOUBLE) / 1000 AS prompt_kilotokens${values['with-data'] ? ', e.data' : ''}
FROM events e, range(${copies}) copy(i)`);
const sql = `SELECT * FROM bench_events ORDER BY seq LIMIT ${rows}`;

const app = createApp({ log, sqlTimeoutMs: 600_000 });
const { url, server } = await new Promise<{ url: string; server: ReturnType<typeof serve> }>((resolvePromise) => {
  const listening = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) =>
    resolvePromise({ url: `http://127.0.0.1:${info.port}`, server: listening }),
  );
});

/** The best of `repeat` runs, in seconds; `check` must see all the rows each time. */
async function best(name: string, run: () => Promise<number>): Promise<number> {
  let fastest = Number.POSITIVE_INFINITY;
  for (let attempt = 0; attempt < repeat; attempt++) {
    const started = performance.now();
    const counted = await run();
    const seconds = (performance.now() - started) / 1000;
    if (counted !== rows) throw new Error(`${name}: got ${counted} rows, expected ${rows}`);
    fastest = Math.min(fastest, seconds);
  }
  return fastest;
}

async function pull(format: string): Promise<Response> {
  const response = await fetch(`${url}/v1/sql?format=${format}&limit=${rows}`, { method: 'POST', body: sql });
  if (!response.ok) throw new Error(`${format}: ${response.status} ${await response.text()}`);
  return response;
}

let bytes: Record<string, number> = {};
const results: { name: string; seconds: number }[] = [];

const direct = await log.database.connect();
results.push({
  name: 'DuckDB in process, values read into JavaScript (getColumnsJS)',
  seconds: await best('direct', async () => {
    const reader = await direct.connection.runAndReadAll(sql);
    const columns = reader.getColumnsJS();
    return columns[0]?.length ?? 0;
  }),
});
results.push({
  name: 'DuckDB in process, query only (values left in DuckDB)',
  seconds: await best('direct-run', async () => (await direct.connection.runAndReadAll(sql)).currentRowCount),
});
direct.close();
const reference = results[0]?.seconds ?? 1;

results.push({
  name: 'HTTP Arrow IPC + tableFromIPC',
  seconds: await best('arrow', async () => {
    const body = new Uint8Array(await (await pull('arrow')).arrayBuffer());
    bytes = { ...bytes, arrow: body.byteLength };
    return tableFromIPC(body).numRows;
  }),
});
results.push({
  name: 'HTTP CSV + split into lines',
  seconds: await best('csv', async () => {
    const text = await (await pull('csv')).text();
    bytes = { ...bytes, csv: Buffer.byteLength(text) };
    return text.split('\n').length - 2;
  }),
});
results.push({
  name: 'HTTP JSON + JSON.parse',
  seconds: await best('json', async () => {
    const text = await (await pull('json')).text();
    bytes = { ...bytes, json: Buffer.byteLength(text) };
    return (JSON.parse(text) as { rows: unknown[] }).rows.length;
  }),
});

server.close();
log.close();
rmSync(folder, { recursive: true, force: true });

if (values.json) {
  const [directResult, , ...http] = results;
  const formats = ['arrow', 'csv', 'json'];
  console.log(
    JSON.stringify({
      rows,
      direct: { seconds: directResult?.seconds, rowsPerSecond: rows / (directResult?.seconds ?? 1) },
      formats: http.map((result, index) => ({
        format: formats[index],
        seconds: result.seconds,
        rowsPerSecond: rows / result.seconds,
        ratio: reference / result.seconds,
        bytes: bytes[formats[index] ?? ''] ?? 0,
      })),
    }),
  );
  process.exit(0);
}
console.log(
  `POST /v1/sql: ${rows.toLocaleString('en')} rows × 9${values['with-data'] ? ' + data' : ''} columns, best of ${repeat}`,
);
for (const result of results) {
  const rate = Math.round(rows / result.seconds).toLocaleString('en');
  console.log(
    `${result.name.padEnd(64)} ${result.seconds.toFixed(2).padStart(7)} s ${rate.padStart(12)} rows/s  ${(result.seconds / reference).toFixed(2)}× direct`,
  );
}
console.log(
  `body sizes: Arrow ${(bytes.arrow ?? 0) / 1e6} MB, CSV ${(bytes.csv ?? 0) / 1e6} MB, JSON ${(bytes.json ?? 0) / 1e6} MB`,
);
