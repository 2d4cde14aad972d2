/**
 * Builds the small log the notebooks read: the bundled sample traces and a few hundred generated runs over three
 * models (so profiles have something to compare), on top of a database an improve run has already written (so
 * proposals, decisions and harness versions are there too). Run by `notebooks/run.sh`; usage:
 * `node --import tsx notebooks/build-log.ts DATABASE`.
 */
import { resolve } from 'node:path';
import { installAnalytics } from '../analytics/index.js';
import { appendGeneratedRuns } from '../bench/generate-runs.js';
import { EventLog } from '../core/index.js';
import { ingestPaths } from '../ingest/ingest.js';

/** Enough failed runs per model for the profile tests to find differences, and still a second or two to write. */
const GENERATED_RUNS = 300;

const path = process.argv[2];
if (!path) {
  console.error('usage: node --import tsx notebooks/build-log.ts DATABASE');
  process.exit(2);
}
const log = await EventLog.open(resolve(path));
try {
  const samples = await ingestPaths(log, [resolve(import.meta.dirname, '../tests/fixtures')]);
  console.error(
    `notebooks: ingested the sample traces: ${samples.totals.runs} runs, ${samples.totals.appended} events, ${samples.totals.rejects} rejected records`,
  );
  const generated = await appendGeneratedRuns(log, { runs: GENERATED_RUNS, seed: 7, eventsPerRun: 40 });
  console.error(`notebooks: appended ${generated.length} generated runs`);
  await installAnalytics(log.database);
} finally {
  log.close();
}
