/**
 * Regenerates the README's benchmark table. Each benchmark runs in its own process with `--json`; every row is printed
 * beside the reference it was compared against in the same run. The table replaces what stands between
 * `<!-- bench:begin -->` and `<!-- bench:end -->` in README.md, and the raw results go to .bench/results.json.
 *
 *   npm run bench                 # the full set (about 15 minutes on 2 cores)
 *   npm run bench -- --quick      # smaller sizes, a few minutes: checks that every benchmark runs
 *   npm run bench -- --print      # print the table, leave README.md alone
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    print: { type: 'boolean', default: false },
    only: { type: 'string' },
  },
});
const root = resolve(import.meta.dirname, '..');
const quick = values.quick;
const only = values.only?.split(',');

/** Runs a script with `--json` (progress on stderr passes through) and parses the last line it prints. */
function runJson<T>(label: string, args: readonly string[]): Promise<{ value: T; seconds: number }> {
  console.error(`\n== ${label}: node ${args.join(' ')}`);
  const started = performance.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      if (code !== 0) return reject(new Error(`${label} exited with ${code}`));
      const last = stdout.trim().split('\n').at(-1) ?? '';
      try {
        resolvePromise({ value: JSON.parse(stdout.trim().startsWith('{') ? stdout : last) as T, seconds });
      } catch {
        reject(new Error(`${label} printed no JSON: ${last.slice(0, 200)}`));
      }
    });
  });
}

const tsx = ['--import', 'tsx'];
const wanted = (name: string) => only === undefined || only.includes(name);

interface IngestBench {
  events: number;
  bytesPerEvent: number;
  product: { seconds: number };
  reference: { seconds: number };
  explicit: { seconds: number };
  ratio: number;
  explicitRatio: number;
  ratios: number[];
  explicitRatios: number[];
  peakMb: number;
  traces: { seconds: number; runs: number; events: number } | null;
}
interface MineBench {
  rows: {
    runs: number;
    events: number;
    detectRankS: string;
    scanS: string;
    distinctTexts: number | '';
    coldEmbedS: string;
    coldTextsPerS: string;
    warmEmbedded: number | '';
    warmEmbedS: string;
    clusterS: string;
  }[];
}
interface TrialsBench {
  overhead: { measure: string; bubblewrap_ms: string; unsandboxed_ms: string; overhead_ms: string }[];
  throughput: { concurrency: number; trials: number; trials_per_minute: string; seconds_per_trial: string }[];
}
interface LoadBench {
  events: number;
  baseEvents: number;
  batchSize: number;
  connections: number;
  ingest: {
    eventsPerSecond: number;
    latencyP50Ms: number;
    latencyP99Ms: number;
    acknowledged: number;
    inLog: number;
    checksumMatches: boolean;
  };
  ingestWhileQuerying: { eventsPerSecond: number; acknowledged: number; inLog: number; checksumMatches: boolean };
  queries: { name: string; count: number; p50Ms: number; p95Ms: number }[];
}
interface ApiSqlBench {
  rows: number;
  direct: { rowsPerSecond: number; seconds: number };
  formats: { format: string; rowsPerSecond: number; seconds: number; ratio: number }[];
}
interface DemoRun {
  seconds: number;
  profiles: { profile: string; trialsRun: number }[];
}

const results: Record<string, unknown> = {};
const rows: string[][] = [];
const count = (value: number) => Math.round(value).toLocaleString('en-US');

if (wanted('ingest')) {
  const events = quick ? 100_000 : 1_000_000;
  const { value } = await runJson<IngestBench>('ingest', [
    ...tsx,
    'bench/ingest.ts',
    '--json',
    '--events',
    `${events}`,
  ]);
  results.ingest = value;
  rows.push([
    `ingest ${count(events)} native events (~${value.bytesPerEvent} bytes): validation, staging, de-duplication, projections`,
    `${count(events / value.product.seconds)} events/s (${value.product.seconds.toFixed(1)} s)`,
    `DuckDB \`read_json\` → table, columns detected: ${count(events / value.reference.seconds)} events/s; ratio **${value.ratio.toFixed(2)}** (target 0.5), the median of ${value.ratios.length} rounds: ${value.ratios.map((ratio) => ratio.toFixed(2)).join(', ')}`,
  ]);
  rows.push([
    '— the same, against `read_json` with the columns given',
    '',
    `${count(events / value.explicit.seconds)} events/s; ratio ${value.explicitRatio.toFixed(2)} (rounds: ${value.explicitRatios.map((ratio) => ratio.toFixed(2)).join(', ')})`,
  ]);
  rows.push(['peak memory of that process', `${count(value.peakMb)} MB`, 'target under 2,048 MB (streamed)']);
  if (value.traces) {
    rows.push([
      `ingest all of ../shared/traces (${count(value.traces.runs)} runs, ${count(value.traces.events)} events, every format)`,
      `${value.traces.seconds.toFixed(1)} s`,
      `${count(value.traces.events / value.traces.seconds)} events/s, against ${count(events / value.product.seconds)} for native NDJSON above`,
    ]);
  }
}

if (wanted('mine')) {
  const sizes = quick ? '1000' : '1000,10000,100000';
  const { value } = await runJson<MineBench>('mine', [
    ...tsx,
    'bench/mine.ts',
    '--json',
    '--sizes',
    sizes,
    '--embed-up-to',
    quick ? '1000' : '10000',
  ]);
  results.mine = value;
  for (const row of value.rows) {
    rows.push([
      `mining ${count(row.runs)} runs (${count(row.events)} events): detectors, evidence, ranking`,
      `${row.detectRankS} s`,
      `one full scan of the log's payloads: ${row.scanS} s (×${(Number(row.detectRankS) / Number(row.scanS)).toFixed(1)})`,
    ]);
  }
  for (const row of value.rows.filter((entry) => entry.coldEmbedS !== '')) {
    rows.push([
      `embedding the distinct failure texts of ${count(row.runs)} runs (USE lite), then k-means`,
      `cold: ${row.distinctTexts} texts in ${row.coldEmbedS} s (${row.coldTextsPerS} texts/s); clustering ${row.clusterS} s`,
      `warm (cache by content hash): ${row.warmEmbedded} texts embedded, ${row.warmEmbedS} s`,
    ]);
  }
}

if (wanted('api')) {
  const { value } = await runJson<ApiSqlBench>('api-sql', [
    ...tsx,
    'bench/api-sql.ts',
    '--json',
    '--rows',
    quick ? '100000' : '1000000',
  ]);
  results.apiSql = value;
  for (const format of value.formats) {
    rows.push([
      `POST /v1/sql, ${count(value.rows)} rows as ${format.format}`,
      `${count(format.rowsPerSecond)} rows/s (${format.seconds.toFixed(2)} s)`,
      `the same query on DuckDB directly: ${count(value.direct.rowsPerSecond)} rows/s; ratio ${format.ratio.toFixed(2)}`,
    ]);
  }
}

if (wanted('load')) {
  const args = quick
    ? ['--events', '50000', '--base-events', '100000', '--batch', '5000']
    : ['--events', '500000', '--base-events', '1000000', '--batch', '5000'];
  const { value } = await runJson<LoadBench>('load', [...tsx, 'bench/load.ts', '--json', ...args]);
  results.load = value;
  rows.push([
    `sustained HTTP ingest of ${count(value.events)} events, loopback, ${value.connections} connections, batches of ${count(value.batchSize)}, onto ${count(value.baseEvents)} events (autocannon in another process)`,
    `${count(value.ingest.eventsPerSecond)} events/s; latency p50 ${value.ingest.latencyP50Ms} ms, p99 ${value.ingest.latencyP99Ms} ms`,
    `every acknowledged event in the log: ${count(value.ingest.inLog)} of ${count(value.ingest.acknowledged)}, md5 of ids ${value.ingest.checksumMatches ? 'equal' : 'DIFFERENT'} (target 50,000 events/s)`,
  ]);
  rows.push([
    'the same ingest while 2 clients query',
    `${count(value.ingestWhileQuerying.eventsPerSecond)} events/s`,
    `${count(value.ingestWhileQuerying.inLog)} of ${count(value.ingestWhileQuerying.acknowledged)} in the log, md5 ${value.ingestWhileQuerying.checksumMatches ? 'equal' : 'DIFFERENT'}`,
  ]);
  for (const query of value.queries) {
    rows.push([
      `${query.name}, during that ingest, over ${count(value.baseEvents)}+ events`,
      `p95 ${query.p95Ms} ms`,
      `p50 ${query.p50Ms} ms (${query.count} requests)`,
    ]);
  }
}

let oracleSecondsPerTrial: number | undefined;
if (wanted('trials')) {
  const { value } = await runJson<TrialsBench>('trials', [
    ...tsx,
    'bench/trials.ts',
    '--json',
    '--iterations',
    quick ? '5' : '20',
  ]);
  results.trials = value;
  const [overhead] = value.overhead;
  if (overhead) {
    rows.push([
      `one trial: create the workspace, ${overhead.measure.replace(/^trial with /, '')}, remove it`,
      `${overhead.bubblewrap_ms} ms in bubblewrap`,
      `${overhead.unsandboxed_ms} ms unsandboxed; overhead ${overhead.overhead_ms} ms`,
    ]);
  }
  const [one, two] = value.throughput;
  if (one && two) {
    oracleSecondsPerTrial = Number(one.seconds_per_trial);
    rows.push([
      `oracle trials on ${one.trials} held-out tasks (setup, solution, verifier, logged)`,
      `${two.trials_per_minute} trials/min at concurrency 2`,
      `${one.trials_per_minute} trials/min at concurrency 1`,
    ]);
  }
}

if (wanted('demo')) {
  const folder = mkdtempSync(join(tmpdir(), 'selfharness-bench-demo-'));
  try {
    const { value, seconds } = await runJson<DemoRun>('demo', [
      'cli/bin.js',
      '--db',
      join(folder, 'demo.duckdb'),
      '--json',
      'demo',
      '--report',
      join(folder, 'report'),
      ...(quick ? ['--quick'] : []),
    ]);
    results.demo = { ...value, wallSeconds: seconds };
    const trials = value.profiles.reduce((total, profile) => total + profile.trialsRun, 0);
    rows.push([
      `the improve loop of \`npm run demo${quick ? ' -- --quick' : ''}\` (3 simulated profiles, samples included)`,
      `${seconds.toFixed(0)} s, ${count(trials)} trials (${(seconds / trials).toFixed(2)} s per trial)`,
      oracleSecondsPerTrial === undefined
        ? ''
        : `an oracle trial alone: ${oracleSecondsPerTrial.toFixed(2)} s (the loop's mining, replay, gate and promotion cost the rest)`,
    ]);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.versions.node}`;
const table = [
  `Measured with \`npm run bench${quick ? ' -- --quick' : ''}\` on ${machine}, ${new Date().toISOString().slice(0, 10)}.`,
  '',
  '| what | result | reference in the same run |',
  '|---|---|---|',
  ...rows.map((cells) => `| ${cells.join(' | ')} |`),
].join('\n');

mkdirSync(join(root, '.bench'), { recursive: true });
writeFileSync(join(root, '.bench', 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
console.log(table);
if (!values.print && only === undefined) {
  const readme = join(root, 'README.md');
  const text = readFileSync(readme, 'utf8');
  const begin = '<!-- bench:begin -->';
  const end = '<!-- bench:end -->';
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  if (from < 0 || to < from) throw new Error(`README.md lacks the markers ${begin} … ${end}`);
  writeFileSync(readme, `${text.slice(0, from + begin.length)}\n${table}\n${text.slice(to)}`);
  console.error('\nREADME.md updated (between the bench markers); raw results in .bench/results.json');
}
