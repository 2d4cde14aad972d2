/**
 * Load benchmark, loopback only: `selfharness serve` in its own process over a log of 1M events, and this process as
 * the load generator (autocannon).
 *
 * 1. Sustained ingest: batches of native events posted to `POST /v1/events` over several connections. Prints events/s
 *    and the request latency (p50, p99), then proves that every acknowledged event is in the log: the count and an md5
 *    over the sorted ids of the acknowledged events equal the server's own count and md5 (`POST /v1/sql`).
 * 2. The same ingest again with new events while analysts query: read-only SQL over the 1M-event log and the
 *    dashboard's API calls (runs, weaknesses, profiles), timed one by one (p50, p95).
 *
 *   npm run bench:load [-- --events 200000 --batch 5000 --connections 4 --base-events 1000000]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { EventLog } from '../core/index.js';
import { ingestPaths } from '../ingest/ingest.js';
import { generateNativeEvents } from './generate-events.js';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '500000' },
    batch: { type: 'string', default: '5000' },
    connections: { type: 'string', default: '4' },
    'base-events': { type: 'string', default: '1000000' },
    'query-clients': { type: 'string', default: '2' },
    folder: { type: 'string', default: '.bench' },
    json: { type: 'boolean', default: false },
  },
});
const eventCount = Number(values.events);
const batchSize = Number(values.batch);
const connections = Number(values.connections);
const baseEvents = Number(values['base-events']);
const queryClients = Number(values['query-clients']);
const folder = resolve(values.folder);
mkdirSync(folder, { recursive: true });
const cli = resolve(import.meta.dirname, '../cli/bin.js');

/** Native event lines of the bench generator, under run ids of their own (`PREFIX:run-N`). */
async function eventLines(count: number, prefix: string): Promise<string[]> {
  const file = join(folder, `events-${count}.ndjson`);
  if (!existsSync(file)) await generateNativeEvents(file, count);
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.replaceAll('"bench:run-', `"${prefix}:run-`));
}

/** The 1M-event log the server starts from: built once, copied fresh for each run. */
async function baseDatabase(): Promise<string> {
  const base = join(folder, `load-base-${baseEvents}.duckdb`);
  if (!existsSync(base)) {
    const input = join(folder, `events-${baseEvents}.ndjson`);
    if (!existsSync(input)) {
      console.error(`generating ${baseEvents} events into ${input} …`);
      await generateNativeEvents(input, baseEvents);
    }
    console.error(`building the ${baseEvents}-event log ${base} …`);
    const log = await EventLog.open(base);
    await ingestPaths(log, [input]);
    log.close();
  }
  const database = join(folder, 'load.duckdb');
  rmSync(database, { force: true });
  rmSync(`${database}.wal`, { force: true });
  copyFileSync(base, database);
  return database;
}

async function startServer(database: string): Promise<{ url: string; process: ChildProcess }> {
  const child = spawn(process.execPath, [cli, '--db', database, 'serve', '--port', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolvePromise, reject) => {
    let text = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const match = /http:\/\/[^\s]+/.exec(text);
      if (match) resolvePromise(match[0]);
    });
    child.on('exit', (code) => reject(new Error(`the server exited with ${code} before it listened`)));
  });
  return { url, process: child };
}

async function sql<Row>(url: string, query: string): Promise<Row[]> {
  const response = await fetch(`${url}/v1/sql`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ sql: query }),
  });
  if (!response.ok) throw new Error(`POST /v1/sql answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { rows: Row[] }).rows;
}

interface IngestRun {
  events: number;
  seconds: number;
  acknowledged: number;
  rejected: number;
  errors: number;
  latencyP50: number;
  latencyP99: number;
  ids: string[];
}

/** Posts every line once, in batches, over `connections` connections; counts what the server acknowledged. */
async function sustainedIngest(url: string, lines: readonly string[]): Promise<IngestRun> {
  const batches: { body: string; ids: string[] }[] = [];
  for (let start = 0; start < lines.length; start += batchSize) {
    const slice = lines.slice(start, start + batchSize);
    batches.push({
      body: `${slice.join('\n')}\n`,
      ids: slice.map((line) => (JSON.parse(line) as { id: string; runId: string }).id),
    });
  }
  let next = 0;
  let acknowledged = 0;
  let rejected = 0;
  let errors = 0;
  const ids: string[] = [];
  const started = performance.now();
  const result = await autocannon({
    url: `${url}/v1/events`,
    connections,
    amount: batches.length,
    timeout: 120,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson' },
        setupRequest: (request, context) => {
          const index = next++;
          (context as { batch?: number }).batch = index;
          return { ...request, body: batches[index % batches.length]?.body ?? '' };
        },
        onResponse: (status, body, context) => {
          const batch = batches[(context as { batch: number }).batch];
          if (status !== 200 || !batch) {
            errors++;
            return;
          }
          const answer = JSON.parse(body) as { accepted: number; duplicates: number; rejected: unknown[] };
          acknowledged += answer.accepted + answer.duplicates;
          rejected += answer.rejected.length;
          if (answer.rejected.length === 0) ids.push(...batch.ids);
        },
      },
    ],
  });
  const seconds = (performance.now() - started) / 1000;
  return {
    events: lines.length,
    seconds,
    acknowledged,
    rejected,
    errors: errors + result.errors + result.non2xx,
    latencyP50: result.latency.p50,
    latencyP99: result.latency.p99,
    ids,
  };
}

/** Checks that the server's log holds exactly the acknowledged events of a prefix: count and md5 of sorted ids. */
async function verify(url: string, prefix: string, run: IngestRun): Promise<{ count: number; matches: boolean }> {
  const expected = createHash('md5')
    .update([...run.ids].sort().join(','))
    .digest('hex');
  const [row] = await sql<{ n: number; digest: string }>(
    url,
    `SELECT count(*) AS n, md5(string_agg(id, ',' ORDER BY id)) AS digest FROM events WHERE run_id LIKE '${prefix}:%'`,
  );
  return { count: Number(row?.n ?? 0), matches: row?.digest === expected && Number(row?.n) === run.ids.length };
}

/** What analysts and the dashboard ask while ingest runs. */
const QUERIES: { name: string; request: (url: string) => Promise<Response> }[] = [
  {
    name: 'SQL: runs by model and outcome',
    request: (url) =>
      fetch(`${url}/v1/sql`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ sql: 'SELECT model, outcome, count(*) AS runs FROM runs GROUP BY ALL ORDER BY ALL' }),
      }),
  },
  {
    name: 'SQL: most failed commands',
    request: (url) =>
      fetch(`${url}/v1/sql`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          sql: "SELECT command, count(*) AS calls FROM tool_calls WHERE tool = 'shell' GROUP BY ALL ORDER BY calls DESC LIMIT 20",
        }),
      }),
  },
  {
    name: 'dashboard: GET /v1/runs (failed, page of 50)',
    request: (url) => fetch(`${url}/v1/runs?outcome=failed&limit=50`),
  },
  { name: 'dashboard: GET /v1/weaknesses', request: (url) => fetch(`${url}/v1/weaknesses`) },
];

function percentile(values: readonly number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? Number.NaN;
}

/** Sends the queries round-robin from `queryClients` clients until `until` resolves; latencies per query, ms. */
async function queryWhile(url: string, until: Promise<unknown>): Promise<Map<string, number[]>> {
  const latencies = new Map(QUERIES.map((query) => [query.name, [] as number[]]));
  let running = true;
  void until.finally(() => {
    running = false;
  });
  let failures = 0;
  await Promise.all(
    Array.from({ length: queryClients }, async (_, client) => {
      for (let index = client; running; index++) {
        const query = QUERIES[index % QUERIES.length]!;
        const started = performance.now();
        const response = await query.request(url);
        await response.arrayBuffer();
        if (!response.ok) failures++;
        latencies.get(query.name)?.push(performance.now() - started);
      }
    }),
  );
  if (failures > 0) throw new Error(`${failures} queries failed during the ingest`);
  return latencies;
}

const database = await baseDatabase();
const server = await startServer(database);
try {
  console.error(
    `server ${server.url} over ${baseEvents} events; posting ${eventCount} events in batches of ${batchSize} over ${connections} connections …`,
  );
  const first = await sustainedIngest(server.url, await eventLines(eventCount, 'load'));
  const firstCheck = await verify(server.url, 'load', first);

  console.error('ingest again, with analysts querying …');
  const secondLines = await eventLines(eventCount, 'load2');
  const ingesting = sustainedIngest(server.url, secondLines);
  const [second, latencies] = await Promise.all([ingesting, queryWhile(server.url, ingesting)]);
  const secondCheck = await verify(server.url, 'load2', second);

  const rate = (run: IngestRun) => Math.round(run.acknowledged / run.seconds);
  const report = {
    events: eventCount,
    baseEvents,
    batchSize,
    connections,
    ingest: {
      eventsPerSecond: rate(first),
      seconds: first.seconds,
      latencyP50Ms: first.latencyP50,
      latencyP99Ms: first.latencyP99,
      acknowledged: first.acknowledged,
      inLog: firstCheck.count,
      checksumMatches: firstCheck.matches,
      errors: first.errors,
    },
    ingestWhileQuerying: {
      eventsPerSecond: rate(second),
      acknowledged: second.acknowledged,
      inLog: secondCheck.count,
      checksumMatches: secondCheck.matches,
      errors: second.errors,
    },
    queries: [...latencies].map(([name, values]) => ({
      name,
      count: values.length,
      p50Ms: Math.round(percentile(values, 0.5)),
      p95Ms: Math.round(percentile(values, 0.95)),
    })),
  };
  if (values.json) console.log(JSON.stringify(report));
  else {
    console.log(`| what | result |\n|---|---|`);
    console.log(
      `| sustained HTTP ingest (${eventCount} events, batches of ${batchSize}, ${connections} connections, onto ${baseEvents} events) | ${report.ingest.eventsPerSecond} events/s; request latency p50 ${first.latencyP50} ms, p99 ${first.latencyP99} ms |`,
    );
    console.log(
      `| acknowledged events in the log | ${firstCheck.count} of ${first.acknowledged}, md5 of ids ${firstCheck.matches ? 'equal' : 'DIFFERENT'}; errors ${first.errors} |`,
    );
    console.log(
      `| ingest while ${queryClients} clients query | ${report.ingestWhileQuerying.eventsPerSecond} events/s; ${secondCheck.count} of ${second.acknowledged} in the log, md5 ${secondCheck.matches ? 'equal' : 'DIFFERENT'} |`,
    );
    for (const query of report.queries) {
      console.log(
        `| ${query.name} during ingest (${query.count} requests) | p50 ${query.p50Ms} ms, p95 ${query.p95Ms} ms |`,
      );
    }
  }
  if (!firstCheck.matches || !secondCheck.matches) process.exitCode = 1;
} finally {
  server.process.kill('SIGTERM');
}
