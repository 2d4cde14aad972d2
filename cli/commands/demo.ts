import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { EventLog } from '../../core/index.js';
import { ingestPaths } from '../../ingest/ingest.js';
import type { GlobalOptions } from '../context.js';
import { formatCount, formatTable, printJson } from '../output.js';

/** Small traces of every supported format, written for the project, some of them deliberately broken. */
const SAMPLES = resolve(import.meta.dirname, '../../tests/fixtures');

export function registerDemo(program: Command, globals: () => GlobalOptions): void {
  program
    .command('demo')
    .description(
      'Run the main job end to end on the bundled sample traces: ingest every format, show outcomes and rejects',
    )
    .action(async () => {
      const global = globals();
      const path = resolve(global.db ?? process.env.SELFHARNESS_DB ?? 'selfharness-demo.duckdb');
      rmSync(path, { force: true });
      rmSync(`${path}.wal`, { force: true });
      const log = await EventLog.open(path);
      try {
        const summary = await ingestPaths(log, [SAMPLES]);
        const outcomes = await log.query(
          "SELECT source_format AS format, count(*) AS runs, count(*) FILTER (WHERE outcome = 'passed') AS passed, count(*) FILTER (WHERE outcome = 'failed') AS failed, count(*) FILTER (WHERE outcome = 'invalid') AS invalid, count(*) FILTER (WHERE outcome NOT IN ('passed', 'failed', 'invalid')) AS other, sum(step_count) AS steps, sum(tool_call_count) AS tool_calls FROM runs GROUP BY ALL ORDER BY ALL",
        );
        const rejects = await log.query(
          'SELECT format, file, position, reason FROM ingest_rejects ORDER BY file, position',
        );
        if (global.json) {
          printJson({ database: path, summary, outcomes, rejects });
          return;
        }
        console.log(`Ingested the sample traces in ${SAMPLES} into ${path}\n`);
        console.log(formatTable(outcomes));
        console.log(
          `\n${formatCount(summary.totals.appended)} events from ${formatCount(summary.totals.runs)} runs; ${rejects.length} records rejected with their reason (the samples include broken files on purpose):\n`,
        );
        console.log(formatTable(rejects.map((row) => ({ ...row, file: String(row.file).replace(`${SAMPLES}/`, '') }))));
        console.log(`\nNext: selfharness --db ${path} sql "select * from runs limit 5"`);
      } finally {
        log.close();
      }
    });
}
