/**
 * Mining benchmark: generated logs of 1k, 10k and 100k runs (about 100 events each, `bench/generate-runs.ts`) are
 * ingested, then mined twice in k-means mode, cold (empty embedding cache) and warm (every vector cached), and once in
 * signature mode. Prints one row per size: detectors + ranking time (detections, evidence, support rule, cards),
 * embedding throughput cold and warm, clustering time, and the totals, so the growth with size is visible.
 *
 * Above `--embed-up-to` runs (default 100,000) the k-means columns are left empty: embedding a large log cold with USE
 * lite on two cores takes a long time, and the detectors + ranking time is measured all the same.
 *
 *   npm run bench:mine [-- --sizes 1000,10000,100000 --embed-up-to 10000 --embedder use --folder .bench]
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createEmbedder } from '../analytics/embedding/index.js';
import { type MiningResult, mineWeaknesses } from '../analytics/mine.js';
import { EventLog } from '../core/index.js';
import { ingestPaths } from '../ingest/ingest.js';
import { writeGeneratedRuns } from './generate-runs.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,10000,100000' },
    embedder: { type: 'string', default: 'use' },
    folder: { type: 'string', default: '.bench' },
    seed: { type: 'string', default: '1' },
    'embed-up-to': { type: 'string', default: '100000' },
    json: { type: 'boolean', default: false },
  },
});
const sizes = values.sizes.split(',').map((size) => Number(size.trim()));
const folder = resolve(values.folder);
const embedUpTo = Number(values['embed-up-to']);
mkdirSync(folder, { recursive: true });

function seconds(milliseconds: number): string {
  return (milliseconds / 1000).toFixed(2);
}

function detectorsAndRanking(result: MiningResult): number {
  return result.timings.detectMs + result.timings.evidenceMs + result.timings.rankMs;
}

type Row = Record<
  | 'runs'
  | 'events'
  | 'failedRuns'
  | 'failures'
  | 'ingestS'
  | 'detectRankS'
  | 'scanS'
  | 'distinctTexts'
  | 'coldEmbedS'
  | 'coldTextsPerS'
  | 'warmEmbedded'
  | 'warmEmbedS'
  | 'clusterS'
  | 'k'
  | 'clusters'
  | 'signatureTotalS'
  | 'kmeansWarmTotalS'
  | 'sameClusters',
  string | number
>;

const rows: Row[] = [];
for (const runs of sizes) {
  const input = join(folder, `mine-runs-${runs}.ndjson`);
  if (!existsSync(input)) {
    console.error(`generating ${runs} runs into ${input} …`);
    await writeGeneratedRuns(`${input}.partial`, { runs, seed: 1 });
    renameSync(`${input}.partial`, input);
  }
  const path = join(folder, `mine-${runs}.duckdb`);
  rmSync(path, { force: true });
  rmSync(`${path}.wal`, { force: true });
  const log = await EventLog.open(path);
  try {
    let started = performance.now();
    const ingested = await ingestPaths(log, [input]);
    const ingestMs = performance.now() - started;
    console.error(`${runs} runs: ingested ${ingested.totals.appended} events in ${seconds(ingestMs)} s`);

    // The reference: one full scan of the log's payloads, the least any question about every event costs.
    started = performance.now();
    await log.query("SELECT count(*) FROM events WHERE CAST(data AS VARCHAR) LIKE '%exit%'");
    const scanMs = performance.now() - started;

    started = performance.now();
    const signature = await mineWeaknesses(log, { mode: 'signature' });
    const signatureMs = performance.now() - started;
    const row: Row = {
      runs,
      events: ingested.totals.appended,
      failedRuns: signature.failedRuns,
      failures: signature.failures,
      ingestS: seconds(ingestMs),
      detectRankS: seconds(detectorsAndRanking(signature)),
      scanS: seconds(scanMs),
      distinctTexts: '',
      coldEmbedS: '',
      coldTextsPerS: '',
      warmEmbedded: '',
      warmEmbedS: '',
      clusterS: '',
      k: '',
      clusters: '',
      signatureTotalS: seconds(signatureMs),
      kmeansWarmTotalS: '',
      sameClusters: '',
    };
    if (runs <= embedUpTo) {
      const embedder = createEmbedder(values.embedder);
      const seed = Number(values.seed);
      const progress = (phase: string) => (state: { phase: string; done?: number; total?: number }) => {
        if (state.phase === 'embed' && state.done !== undefined) {
          process.stderr.write(`\r  ${phase}: embedding ${state.done}/${state.total}\u001b[K`);
        }
      };
      const cold = await mineWeaknesses(log, { mode: 'kmeans', embedder, seed, onProgress: progress('cold') });
      process.stderr.write('\n');
      const warm = await mineWeaknesses(log, { mode: 'kmeans', embedder, seed, onProgress: progress('warm') });
      process.stderr.write('\n');
      await embedder.close?.();
      const sameClusters = JSON.stringify(warm.clusters) === JSON.stringify(cold.clusters);
      if (!sameClusters) console.error(`  warning: warm clusters differ from cold ones at ${runs} runs`);
      const warmTotal = Object.values(warm.timings).reduce((total, value) => total + value, 0);
      Object.assign(row, {
        distinctTexts: cold.embedding?.distinct ?? 0,
        coldEmbedS: seconds(cold.timings.embedMs),
        coldTextsPerS: ((cold.embedding?.embedded ?? 0) / (cold.timings.embedMs / 1000)).toFixed(1),
        warmEmbedded: warm.embedding?.embedded ?? 0,
        warmEmbedS: seconds(warm.timings.embedMs),
        clusterS: seconds(warm.timings.clusterMs),
        k: warm.k ?? '',
        clusters: warm.clusters.length,
        kmeansWarmTotalS: seconds(warmTotal),
        sameClusters: sameClusters ? 'yes' : 'no',
      });
    }
    rows.push(row);
    console.error(JSON.stringify(rows.at(-1)));
  } finally {
    log.close();
  }
}

const columns: [keyof Row, string][] = [
  ['runs', 'runs'],
  ['events', 'events'],
  ['failedRuns', 'failed runs'],
  ['failures', 'detections'],
  ['detectRankS', 'detect+rank s'],
  ['scanS', 'full scan s (reference)'],
  ['distinctTexts', 'distinct texts'],
  ['coldEmbedS', 'embed cold s'],
  ['coldTextsPerS', 'cold texts/s'],
  ['warmEmbedded', 'warm embedded'],
  ['warmEmbedS', 'embed warm s'],
  ['clusterS', 'cluster s'],
  ['k', 'k'],
  ['clusters', 'clusters'],
  ['signatureTotalS', 'signature total s'],
  ['kmeansWarmTotalS', 'kmeans warm total s'],
  ['sameClusters', 'warm = cold'],
  ['ingestS', 'ingest s'],
];
if (values.json) {
  console.log(JSON.stringify({ embedder: values.embedder, rows }));
  process.exit(0);
}
console.log(
  `embedder: ${values.embedder}; detect+rank = detectors, evidence lookup, support rule, cards (signature mode)`,
);
console.log(`| ${columns.map(([, title]) => title).join(' | ')} |`);
console.log(`|${columns.map(() => '---').join('|')}|`);
for (const row of rows) console.log(`| ${columns.map(([key]) => String(row[key] ?? '')).join(' | ')} |`);
