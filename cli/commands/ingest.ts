import type { Command } from 'commander';
import { UserError } from '../../core/index.js';
import { adapters } from '../../ingest/adapters.js';
import { DEFAULT_BATCH_SIZE, type IngestProgress, type IngestSummary, ingestPaths } from '../../ingest/ingest.js';
import { type GlobalOptions, withLog } from '../context.js';
import { formatCount, formatTable, printJson } from '../output.js';
import { createProgress } from '../progress.js';

interface IngestCommandOptions {
  format?: string;
  model?: string;
  dataset?: string;
  batchSize?: string;
}

export function registerIngest(program: Command, globals: () => GlobalOptions): void {
  program
    .command('ingest')
    .description(
      'Load trace files and directories into the event log (formats are detected; re-importing adds nothing)',
    )
    .argument('<paths...>', 'files or directories to read, walked recursively')
    .option(
      '--format <format>',
      `read every input as this format (${adapters.map((adapter) => adapter.format).join(', ')})`,
    )
    .option('--model <model>', 'model name for runs whose source does not name one')
    .option('--dataset <dataset>', 'dataset name for runs whose source does not name one')
    .option(
      '--batch-size <n>',
      'events per transaction (a crash loses at most the two batches in flight; one DuckDB row group is fastest)',
      String(DEFAULT_BATCH_SIZE),
    )
    .addHelpText(
      'after',
      `\nFormats:\n${adapters.map((adapter) => `  ${adapter.format.padEnd(12)} ${adapter.description}`).join('\n')}`,
    )
    .action(async (paths: string[], options: IngestCommandOptions) => {
      const global = globals();
      const batchSize = Number(options.batchSize);
      if (!Number.isInteger(batchSize) || batchSize < 1) {
        throw new UserError(`--batch-size must be a positive integer, got "${options.batchSize}".`);
      }
      const progress = createProgress();
      const started = performance.now();
      const summary = await withLog(global, (log) =>
        ingestPaths(log, paths, {
          format: options.format,
          model: options.model,
          dataset: options.dataset,
          batchSize,
          onProgress: (state: IngestProgress) =>
            progress.update(
              `ingest: ${state.unitsDone}/${state.unitsTotal} sources, ${formatCount(state.eventsRead)} events, ${formatCount(state.rejects)} rejects`,
            ),
        }),
      );
      progress.done();
      const seconds = (performance.now() - started) / 1000;
      if (global.json) printJson({ ...summary, seconds });
      else printSummary(summary, seconds);
    });
}

function printSummary(summary: IngestSummary, seconds: number): void {
  const rows = summary.formats.map((format) => ({
    format: format.format,
    sources: format.units,
    runs: format.runs,
    events: format.events,
    new: format.appended,
    'already in log': format.events - format.appended,
    rejects: format.rejects,
  }));
  console.log(formatTable(rows));
  const { totals } = summary;
  console.log(
    `\n${formatCount(totals.appended)} new events (${formatCount(totals.events - totals.appended)} already in the log) from ${formatCount(totals.runs)} runs in ${seconds.toFixed(1)} s; ${formatCount(totals.rejects)} rejects.`,
  );
  if (summary.rejects.length > 0) {
    console.log('\nRejected records (kept in table ingest_rejects):');
    for (const reject of summary.rejects.slice(0, 20)) {
      console.log(`  ${reject.file ?? '?'} ${reject.position ?? ''}: ${reject.reason}`);
    }
    if (summary.rejects.length > 20) console.log(`  … ${summary.rejects.length - 20} more: selfharness rejects`);
  }
  if (summary.skipped.length > 0) {
    console.log(
      `\n${summary.skipped.length} files skipped (not a known trace format), e.g. ${summary.skipped[0]?.path}`,
    );
  }
}
