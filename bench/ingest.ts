/**
 * Ingest benchmark: 1M generated native events through the product path (`ingestPaths`: validation, staging,
 * de-duplication, projections) against DuckDB's own `read_json` of the same file into a plain table, in the same
 * process: once as usually called (columns detected) and once with the columns the log keeps. The three run one after
 * the other in each of several rounds, and each ratio is the median of its rounds: on a shared machine one run's time
 * can be off by a third, and a product run and the reference run beside it see the same conditions. Also the wall
 * time of ingesting the real traces in ../shared/traces when they are present.
 *
 *   npm run bench:ingest [-- --events 1000000 --rounds 5]
 */
import { createReadStream, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { median } from '../analytics/statistics.js';
import { Database, EventLog } from '../core/index.js';
import { ingestPaths } from '../ingest/ingest.js';
import { generateNativeEvents } from './generate-events.js';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    rounds: { type: 'string', default: '5' },
    folder: { type: 'string', default: '.bench' },
    traces: { type: 'string', default: resolve(import.meta.dirname, '../../shared/traces') },
    json: { type: 'boolean', default: false },
  },
});
const count = Number(values.events);
const folder = resolve(values.folder);
mkdirSync(folder, { recursive: true });

function fresh(path: string): string {
  rmSync(path, { force: true });
  rmSync(`${path}.wal`, { force: true });
  return path;
}

const input = join(folder, `events-${count}.ndjson`);
if (!existsSync(input)) {
  console.error(`generating ${count} events into ${input} …`);
  await generateNativeEvents(input, count);
}
const bytes = statSync(input).size;
// Read once before the rounds, so that the first contender does not also pay for reading the file from disk.
for await (const _chunk of createReadStream(input, { highWaterMark: 1 << 20 })) {
  // Only the reading counts.
}
console.error(`input: ${count} events, ${(bytes / 1e6).toFixed(0)} MB (${Math.round(bytes / count)} bytes per event)`);

/** Processor seconds (all threads, this process) since `since`: unlike wall time, barely changed by other load. */
function cpuSeconds(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1e6;
}

/** Ingests the input through the product path into a fresh log; seconds and processor seconds, open and close included. */
async function ingestWithProduct(): Promise<{ seconds: number; cpu: number }> {
  const begun = performance.now();
  const cpuBegun = process.cpuUsage();
  const log = await EventLog.open(fresh(join(folder, 'product.duckdb')));
  const summary = await ingestPaths(log, [input]);
  log.close();
  if (summary.totals.appended !== count)
    throw new Error(`product path appended ${summary.totals.appended} of ${count}`);
  return { seconds: (performance.now() - begun) / 1000, cpu: cpuSeconds(cpuBegun) };
}

/** Loads the input into a fresh database with one statement; returns the seconds it took, opening and closing included. */
async function loadWithDuckDB(name: string, sql: string): Promise<{ seconds: number; cpu: number }> {
  const begun = performance.now();
  const cpuBegun = process.cpuUsage();
  const reference = await Database.open(fresh(join(folder, `${name}.duckdb`)));
  await reference.run(sql, [input]);
  const loaded = Number((await reference.one<{ n: bigint }>('SELECT count(*) AS n FROM events'))?.n ?? 0);
  reference.close();
  if (loaded !== count) throw new Error(`${name}: read_json loaded ${loaded} of ${count}`);
  return { seconds: (performance.now() - begun) / 1000, cpu: cpuSeconds(cpuBegun) };
}

// DuckDB's own loader as it is usually called: it detects the columns (`data` becomes a wide STRUCT).
const REFERENCE_SQL = `CREATE TABLE events AS SELECT * FROM read_json($1, format = 'newline_delimited')`;
// The same load with the columns the log keeps: `data` as JSON text, `time` as TIMESTAMPTZ.
const EXPLICIT_SQL = `CREATE TABLE events AS
   SELECT id, type, runId AS run_id, CAST(time AS TIMESTAMPTZ) AS time, data
   FROM read_json($1, format = 'newline_delimited',
                  columns = {id: 'VARCHAR', type: 'VARCHAR', runId: 'VARCHAR', time: 'VARCHAR', data: 'JSON'})`;

interface Round {
  product: { seconds: number; cpu: number };
  reference: { seconds: number; cpu: number };
  explicit: { seconds: number; cpu: number };
}
const rounds: Round[] = [];
const roundCount = Math.max(1, Number(values.rounds));
for (let round = 1; round <= roundCount; round++) {
  const product = await ingestWithProduct();
  const reference = await loadWithDuckDB('reference', REFERENCE_SQL);
  const explicit = await loadWithDuckDB('reference-explicit', EXPLICIT_SQL);
  rounds.push({ product, reference, explicit });
  console.error(
    `round ${round}/${roundCount}: product ${product.seconds.toFixed(2)} s, read_json ${reference.seconds.toFixed(2)} s (ratio ${(reference.seconds / product.seconds).toFixed(2)}), explicit ${explicit.seconds.toFixed(2)} s`,
  );
}

/** Rounds are at least one, so every median exists. */
const middle = (values: number[]) => median(values) as number;
const medianOf = (part: keyof Round) => ({
  seconds: middle(rounds.map((round) => round[part].seconds)),
  cpu: middle(rounds.map((round) => round[part].cpu)),
});
const product = medianOf('product');
const reference = medianOf('reference');
const explicit = medianOf('explicit');
const ratios = rounds.map((round) => round.reference.seconds / round.product.seconds);
const explicitRatios = rounds.map((round) => round.explicit.seconds / round.product.seconds);
const ratio = middle(ratios);
const explicitRatio = middle(explicitRatios);
const spread = (values: number[]) => `rounds: ${values.map((value) => value.toFixed(2)).join(', ')}`;

const peakMb = process.resourceUsage().maxRSS / 1024;
const rate = (seconds: number) => `${(count / seconds).toFixed(0)} events/s (${seconds.toFixed(2)} s)`;
const rows: [string, string][] = [
  ['product path (ingestPaths), median', `${rate(product.seconds)}, ${product.cpu.toFixed(2)} s CPU`],
  ['reference: DuckDB read_json → table', `${rate(reference.seconds)}, ${reference.cpu.toFixed(2)} s CPU`],
  ['ratio product / read_json, median', `${ratio.toFixed(2)} (${spread(ratios)})`],
  ['reference: read_json, explicit columns', `${rate(explicit.seconds)}, ${explicit.cpu.toFixed(2)} s CPU`],
  ['ratio product / explicit read_json', `${explicitRatio.toFixed(2)} (${spread(explicitRatios)})`],
  ['peak memory (RSS, whole process)', `${peakMb.toFixed(0)} MB`],
];

let tracesResult: { seconds: number; runs: number; events: number; rejects: number } | undefined;
if (existsSync(values.traces)) {
  const started = performance.now();
  const tracesLog = await EventLog.open(fresh(join(folder, 'traces.duckdb')));
  const traces = await ingestPaths(tracesLog, [values.traces]);
  tracesLog.close();
  const seconds = (performance.now() - started) / 1000;
  tracesResult = {
    seconds,
    runs: traces.totals.runs,
    events: traces.totals.appended,
    rejects: traces.totals.rejects,
  };
  rows.push([
    `real traces (${values.traces})`,
    `${seconds.toFixed(2)} s: ${traces.totals.runs} runs, ${traces.totals.appended} events, ${traces.totals.rejects} rejects`,
  ]);
} else {
  rows.push(['real traces', `skipped: ${values.traces} not found`]);
}

if (values.json) {
  console.log(
    JSON.stringify({
      events: count,
      bytesPerEvent: Math.round(bytes / count),
      product: { seconds: product.seconds, cpuSeconds: product.cpu },
      reference: { seconds: reference.seconds, cpuSeconds: reference.cpu },
      explicit: { seconds: explicit.seconds, cpuSeconds: explicit.cpu },
      ratio,
      explicitRatio,
      ratios,
      explicitRatios,
      peakMb,
      traces: tracesResult ?? null,
    }),
  );
} else {
  const width = Math.max(...rows.map(([name]) => name.length));
  for (const [name, value] of rows) console.log(`${name.padEnd(width)}  ${value}`);
}
