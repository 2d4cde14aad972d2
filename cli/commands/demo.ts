import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { installAnalytics } from '../../analytics/schema.js';
import { EventLog } from '../../core/index.js';
import { ingestPaths } from '../../ingest/ingest.js';
import { RuleProposer } from '../../proposer/index.js';
import { openSandbox, type Split } from '../../tasks/index.js';
import type { GateMode, ImproveResult, RateCell } from '../../validator/index.js';
import type { GlobalOptions } from '../context.js';
import { formatCount, formatTable, printJson } from '../output.js';
import { runImprove, writeReport } from './improve.js';

/** Small traces of every supported format, written for the project, some of them deliberately broken. */
const SAMPLES = resolve(import.meta.dirname, '../../tests/fixtures');

/** The simulated profiles the demo improves, each in its own database (the harness head is one per database). */
export const DEMO_PROFILES = ['late-artifacts', 'blind-retry', 'lost-state'] as const;

/** What the loop runs with: the full demo (about 10 minutes on 2 cores) and `--quick` (about a minute). */
export interface DemoSettings {
  readonly iterations: number;
  readonly candidates: number;
  readonly attempts: number;
  readonly gate: GateMode;
  readonly concurrency: number;
  /**
   * Screening: the most a candidate may fire on passing runs. A warning that fires where a run recovers anyway (the
   * dependency precheck on a model that falls back from a missing program) is cheap, so the demo lets such candidates
   * through to the trials, which judge them.
   */
  readonly maxPassingFireRate: number;
  /** Task subsets per split; absent: the whole split. */
  readonly taskIds: Partial<Record<Split, readonly string[]>>;
}

export const DEMO_SETTINGS: DemoSettings = {
  iterations: 2,
  candidates: 5,
  attempts: 1,
  gate: 'strict',
  concurrency: 4,
  maxPassingFireRate: 0.8,
  taskIds: {},
};

/**
 * The quick demo: fewer tasks, one attempt, one iteration. Ten trial pairs cannot reach the strict gate's paired test
 * (it needs at least five more tasks fixed than broken), so the quick demo judges with the paper's rule.
 */
export const QUICK_DEMO_SETTINGS: DemoSettings = {
  iterations: 1,
  candidates: 5,
  attempts: 1,
  gate: 'paper',
  concurrency: 4,
  maxPassingFireRate: 0.8,
  taskIds: {
    'held-in': [
      'make-hello-subdir',
      'source-env-report',
      'log-report-by-date',
      'count-words',
      'csv-region-totals',
      'backup-script',
    ],
    'held-out': ['render-template-env', 'shell-helper-functions', 'activate-tools-path', 'file-manifest'],
    sealed: ['make-install-prefix', 'wordcount-tool'],
  },
};

export function registerDemo(program: Command, globals: () => GlobalOptions): void {
  program
    .command('demo')
    .description(
      'Run the main job end to end: ingest the bundled sample traces, then improve the harness for three simulated models on the bundled tasks and print before/after pass rates',
    )
    .option('--quick', 'a small version of the loop (about a minute)')
    .option('--samples-only', 'only ingest the sample traces')
    .option('--report <dir>', 'where the per-profile reports go', join('selfharness-report', 'demo'))
    .action(async (options: { quick?: boolean; samplesOnly?: boolean; report: string }) => {
      const global = globals();
      const path = resolve(global.db ?? process.env.SELFHARNESS_DB ?? 'selfharness-demo.duckdb');
      const samples = await ingestSamples(path);
      if (!global.json) printSamples(path, samples);
      if (options.samplesOnly) {
        if (global.json) printJson({ database: path, ...samples });
        return;
      }
      const settings = options.quick ? QUICK_DEMO_SETTINGS : DEMO_SETTINGS;
      const started = Date.now();
      const results: { profile: string; database: string; result: ImproveResult; report: string }[] = [];
      const sandbox = await openSandbox();
      if (!global.json)
        console.log(
          `\nImproving the harness for ${DEMO_PROFILES.length} simulated models (${describeSettings(settings)}); progress on stderr.\n${TEST_DOUBLE_NOTE}\n`,
        );
      for (const profile of DEMO_PROFILES) {
        const database = path.replace(/(\.duckdb)?$/, `-${profile}.duckdb`);
        removeDatabase(database);
        const log = await EventLog.open(database);
        try {
          await installAnalytics(log.database);
          const result = await runImprove(log, {
            model: `sim:${profile}`,
            iterations: settings.iterations,
            candidates: settings.candidates,
            proposer: new RuleProposer(),
            gate: settings.gate,
            attempts: settings.attempts,
            concurrency: settings.concurrency,
            maxPassingFireRate: settings.maxPassingFireRate,
            taskIds: settings.taskIds,
            jobId: `demo-${profile}`,
            trials: { sandbox },
          });
          const folder = resolve(options.report, profile);
          writeReport(folder, result);
          results.push({ profile, database, result, report: folder });
        } finally {
          log.close();
        }
      }
      const seconds = Math.round((Date.now() - started) / 1000);
      if (global.json) {
        printJson({
          database: path,
          ...samples,
          settings,
          seconds,
          note: TEST_DOUBLE_NOTE,
          profiles: results.map(({ profile, database, result, report }) => ({
            profile,
            database,
            report,
            jobId: result.jobId,
            before: result.before,
            after: result.after,
            acceptedEdits: result.acceptedEdits,
            trialsRun: result.trialsRun,
          })),
        });
        return;
      }
      console.log(`\n${formatProfiles(results.map(({ profile, result }) => ({ profile, result })))}`);
      console.log(`\n${TEST_DOUBLE_NOTE}`);
      console.log(
        `\nDone in ${seconds} s. Reports: ${results.map((entry) => join(entry.report, 'report.html')).join(', ')}`,
      );
    });
}

const TEST_DOUBLE_NOTE =
  'Note: sim:PROFILE is a simulated model, a test double that works from each task’s reference solution and injects its profile’s failure mechanisms. These numbers show that the loop works; they are no claim about real models.';

function describeSettings(settings: DemoSettings): string {
  const tasks = settings.taskIds['held-in']
    ? `${settings.taskIds['held-in'].length} held-in, ${settings.taskIds['held-out']?.length ?? 0} held-out, ${settings.taskIds.sealed?.length ?? 0} sealed tasks`
    : 'all bundled tasks';
  return `${tasks}, ${settings.iterations} iteration${settings.iterations === 1 ? '' : 's'}, ${settings.candidates} candidates, ${settings.attempts} attempt${settings.attempts === 1 ? '' : 's'}, ${settings.gate} gate, offline rule-based proposer`;
}

const rate = (cell: RateCell | undefined) => (cell === undefined ? 'n/a' : `${cell.rate.toFixed(0)}%`);
const change = (before: RateCell | undefined, after: RateCell | undefined) => `${rate(before)} → ${rate(after)}`;

/** The per-profile before/after table. */
export function formatProfiles(rows: readonly { profile: string; result: ImproveResult }[]): string {
  return formatTable(
    rows.map(({ profile, result }) => ({
      profile: `sim:${profile}`,
      'held-in': change(result.before.heldIn, result.after.heldIn),
      'held-out': change(result.before.heldOut, result.after.heldOut),
      sealed: change(result.before.sealed, result.after.sealed),
      'accepted edits': result.acceptedEdits.map((edit) => edit.summary).join('; ') || '(none)',
    })),
  );
}

function removeDatabase(path: string): void {
  rmSync(path, { force: true });
  rmSync(`${path}.wal`, { force: true });
}

async function ingestSamples(path: string) {
  removeDatabase(path);
  const log = await EventLog.open(path);
  try {
    const summary = await ingestPaths(log, [SAMPLES]);
    const outcomes = await log.query(
      "SELECT source_format AS format, count(*) AS runs, count(*) FILTER (WHERE outcome = 'passed') AS passed, count(*) FILTER (WHERE outcome = 'failed') AS failed, count(*) FILTER (WHERE outcome = 'invalid') AS invalid, count(*) FILTER (WHERE outcome NOT IN ('passed', 'failed', 'invalid')) AS other, sum(step_count) AS steps, sum(tool_call_count) AS tool_calls FROM runs GROUP BY ALL ORDER BY ALL",
    );
    const rejects = await log.query(
      'SELECT format, file, position, reason FROM ingest_rejects ORDER BY file, position',
    );
    return { summary, outcomes, rejects };
  } finally {
    log.close();
  }
}

function printSamples(path: string, samples: Awaited<ReturnType<typeof ingestSamples>>): void {
  console.log(`Ingested the sample traces in ${SAMPLES} into ${path}\n`);
  console.log(formatTable(samples.outcomes));
  console.log(
    `\n${formatCount(samples.summary.totals.appended)} events from ${formatCount(samples.summary.totals.runs)} runs; ${samples.rejects.length} records rejected with their reason (the samples include broken files on purpose):\n`,
  );
  console.log(
    formatTable(samples.rejects.map((row) => ({ ...row, file: String(row.file).replace(`${SAMPLES}/`, '') }))),
  );
  console.log(`\nNext: selfharness --db ${path} sql "select * from runs limit 5"`);
}
