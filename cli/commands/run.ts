import type { Command } from 'commander';
import { SelfharnessError, UserError } from '../../core/index.js';
import { createAgent, type TrialAgent } from '../../harness/index.js';
import {
  createOracleAgent,
  loadSuite,
  ORACLE_MODEL,
  openSandbox,
  runTrials,
  selectTasks,
  summarizeTrials,
  type TrialProgress,
  type TrialResult,
  type TrialSummaryRow,
} from '../../tasks/index.js';
import { databasePath, type GlobalOptions, withLog } from '../context.js';
import { formatTable, printJson } from '../output.js';
import { createProgress } from '../progress.js';

interface RunOptions {
  tasks: string[];
  model: string;
  harness?: string;
  attempts: string;
  concurrency: string;
  seed: string;
  suite?: string;
  unsafeNoSandbox?: boolean;
  json?: boolean;
}

function parseCount(value: string, flag: string, minimum: number): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < minimum) {
    throw new UserError(`${flag} must be a whole number of at least ${minimum}, not "${value}".`);
  }
  return number;
}

function formatRate(row: TrialSummaryRow): string {
  return row.passRate === null ? '-' : `${(row.passRate * 100).toFixed(1)}%`;
}

function progressLine(progress: TrialProgress): string {
  return `trials ${progress.done}/${progress.total} · running ${progress.running} · passed ${progress.passed} · failed ${progress.failed} · invalid ${progress.invalid}`;
}

/** Interrupts the batch on the first SIGINT/SIGTERM (sandboxes are stopped and removed); a second one exits at once. */
function interruptOnSignals(controller: AbortController): () => void {
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write(
      `\n${signal}: stopping the running trials and removing their sandboxes (again to quit at once)\n`,
    );
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

export function registerRun(program: Command, globals: () => GlobalOptions): void {
  program
    .command('run')
    .description(
      'Run a model on tasks of the suite, each trial in a bubblewrap sandbox, logging every step; print pass rates',
    )
    .requiredOption('--tasks <selection...>', 'held-in, held-out, sealed, all, or task ids')
    .requiredOption('--model <model>', `${ORACLE_MODEL} (the reference solutions), sim:PROFILE or openai:MODEL`)
    .option('--harness <version>', 'harness version id or prefix (default: the built-in default harness)')
    .option('--attempts <n>', 'attempts per task', '1')
    .option('--concurrency <n>', 'trials running at the same time', '1')
    .option('--seed <n>', 'seed of the batch (each trial derives its own from it)', '0')
    .option('--suite <folder>', 'a task suite: a folder with splits.json and suite/ (default: the bundled suite)')
    .option(
      '--unsafe-no-sandbox',
      'run the commands directly on this machine, without bubblewrap (only commands you trust)',
    )
    .option('--json', 'print results as JSON')
    .action(async (options: RunOptions) => {
      const global = globals();
      const json = options.json || global.json;
      const attempts = parseCount(options.attempts, '--attempts', 1);
      const concurrency = parseCount(options.concurrency, '--concurrency', 1);
      const seed = parseCount(options.seed, '--seed', 0);
      const suite = loadSuite(options.suite);
      const tasks = selectTasks(suite, options.tasks);
      const sandbox = await openSandbox({ unsafeNoSandbox: options.unsafeNoSandbox });
      if (!sandbox.isolated) {
        process.stderr.write(
          'warning: --unsafe-no-sandbox: commands run directly on this machine, with your permissions, files and network. Use it only for commands you trust.\n',
        );
      }
      const controller = new AbortController();
      const stopListening = interruptOnSignals(controller);
      try {
        const outcome = await withLog(global, async (log) => {
          let agent: TrialAgent;
          if (options.model === ORACLE_MODEL) {
            if (options.harness)
              process.stderr.write(`note: --harness is ignored for ${ORACLE_MODEL}: it runs no harness.\n`);
            agent = createOracleAgent();
          } else {
            agent = await createAgent({ model: options.model, harness: options.harness, log });
          }
          const trials = tasks.length * attempts;
          process.stderr.write(
            `Running ${tasks.length} task${tasks.length === 1 ? '' : 's'} × ${attempts} attempt${attempts === 1 ? '' : 's'} with ${agent.model}${agent.harnessVersion ? ` (harness ${agent.harnessVersion})` : ''}, ${concurrency} at a time, ${sandbox.isolated ? 'in bubblewrap sandboxes' : 'UNSANDBOXED'}; logging to ${databasePath(global)}\n`,
          );
          const progress = createProgress();
          const batch = await runTrials({
            log,
            tasks,
            agent,
            attempts,
            concurrency,
            seed,
            sandbox,
            signal: controller.signal,
            onProgress: (state) => progress.update(progressLine(state)),
          });
          progress.done();
          const finished = batch.results.length;
          const unfinished = batch.results.filter((result) => result.outcome === 'unfinished').length;
          // Trials that never started count as unfinished too: they have no run at all in the log.
          return { agent, batch, notStarted: trials - finished, unfinished };
        });
        const { agent, batch, notStarted, unfinished } = outcome;
        const summary = summarizeTrials(batch.results);
        if (json) {
          printJson({
            database: databasePath(global),
            batchId: batch.batchId,
            model: agent.model,
            harnessVersion: agent.harnessVersion ?? null,
            interrupted: batch.interrupted,
            notStarted,
            summary,
            results: batch.results,
          });
        } else {
          printSummary(batch.batchId, batch.results, summary.rows, summary.overall, notStarted);
        }
        if (batch.interrupted) {
          throw new SelfharnessError(
            `Interrupted: ${unfinished} trial${unfinished === 1 ? '' : 's'} left unfinished (logged without an end, so no rate counts ${unfinished === 1 ? 'it' : 'them'}) and ${notStarted} not started.`,
          );
        }
      } finally {
        stopListening();
      }
    });
}

function printSummary(
  batchId: string,
  results: readonly TrialResult[],
  rows: readonly TrialSummaryRow[],
  overall: TrialSummaryRow,
  notStarted: number,
): void {
  const notPassed = results.filter((result) => result.outcome !== 'passed');
  if (notPassed.length > 0) {
    console.log(
      formatTable(
        notPassed.map((result) => ({
          task: result.task,
          attempt: result.attempt,
          outcome: result.outcome,
          reason: result.failureReason ?? '',
          detail: result.detail ?? '',
          run_id: result.runId,
        })),
      ),
    );
    console.log('');
  }
  console.log(
    formatTable(
      [...rows, overall].map((row) => ({
        split: row.split,
        trials: row.trials,
        passed: row.passed,
        failed: row.failed,
        pass_rate: formatRate(row),
        invalid: row.invalid,
        unfinished: row.unfinished,
      })),
    ),
  );
  console.log(
    `\nBatch ${batchId}. Pass rate = passed / (passed + failed); invalid trials (the infrastructure failed) and unfinished ones are left out.${notStarted > 0 ? ` ${notStarted} trials did not start.` : ''}`,
  );
}
