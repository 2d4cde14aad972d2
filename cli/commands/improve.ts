import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { EventLog } from '../../core/index.js';
import { loadSuite, openSandbox } from '../../tasks/index.js';
import { IMPROVE_DEFAULTS, IMPROVE_FLAGS, parseImproveRequest } from '../../validator/improve-options.js';
import {
  type ImproveOptions,
  type ImproveResult,
  improve,
  renderHtmlReport,
  renderMarkdownReport,
} from '../../validator/index.js';
import { type GlobalOptions, withLog } from '../context.js';
import { formatTable, printJson } from '../output.js';
import { createProgress } from '../progress.js';

interface ImproveCommandOptions {
  model: string;
  iterations?: string;
  candidates?: string;
  gate?: string;
  attempts?: string;
  concurrency?: string;
  proposer?: string;
  llmModel?: string;
  seed?: string;
  job?: string;
  report?: string;
  suite?: string;
  heldIn?: string;
  heldOut?: string;
  sealed?: string;
  maxPassingFireRate?: string;
  unsafeNoSandbox?: boolean;
  json?: boolean;
}

/** `selfharness improve`: the self-improvement loop, resumable from the log, ending with a report folder. */
export function registerImprove(program: Command, globals: () => GlobalOptions): void {
  program
    .command('improve')
    .description(
      'Improve the harness for a model: baseline trials, mine, propose, replay screen, paired trials, gate, promote; repeated. Resumable: run the same command again to continue',
    )
    .requiredOption('--model <model>', 'the agent model: sim:PROFILE or openai:MODEL')
    .option('--iterations <n>', 'improvement rounds', String(IMPROVE_DEFAULTS.iterations))
    .option('--candidates <k>', 'candidate edits per round', String(IMPROVE_DEFAULTS.candidates))
    .option(
      '--gate <gate>',
      'strict (paired test, intervals, per-task check) or paper (the paper’s rule)',
      IMPROVE_DEFAULTS.gate,
    )
    .option('--attempts <n>', 'attempts per task and version', String(IMPROVE_DEFAULTS.attempts))
    .option('--concurrency <n>', 'trials at the same time', String(IMPROVE_DEFAULTS.concurrency))
    .option('--proposer <proposer>', 'rules (offline) or llm (SELFHARNESS_LLM_* endpoint)', IMPROVE_DEFAULTS.proposer)
    .option('--llm-model <model>', 'the proposing model for --proposer llm (default: $SELFHARNESS_LLM_MODEL)')
    .option('--seed <n>', 'seed of the trials', String(IMPROVE_DEFAULTS.seed))
    .option(
      '--job <id>',
      'the job to start or continue (default: derived from the model and options, printed at start)',
    )
    .option('--report <dir>', 'where the report goes (default: ./selfharness-report/<job>)')
    .option('--suite <dir>', 'a task suite folder with splits.json and suite/ (default: the bundled one)')
    .option('--held-in <ids>', 'held-in task ids to use, comma-separated (default: the whole split)')
    .option('--held-out <ids>', 'held-out task ids to use, comma-separated (default: the whole split)')
    .option('--sealed <ids>', 'sealed task ids for the final report, comma-separated; "none" for none')
    .option(
      '--max-passing-fire-rate <rate>',
      'screening: the most a candidate may fire on passing runs',
      String(IMPROVE_DEFAULTS.maxPassingFireRate),
    )
    .option('--unsafe-no-sandbox', 'run trials without bubblewrap (only for commands you trust)')
    .option('--json', 'print the result as JSON')
    .action(async (options: ImproveCommandOptions) => {
      const global = globals();
      const { options: improveOptions } = await parseImproveRequest(
        {
          model: options.model,
          iterations: options.iterations,
          candidates: options.candidates,
          attempts: options.attempts,
          gate: options.gate,
          seed: options.seed,
          proposer: options.proposer,
          llmModel: options.llmModel,
          concurrency: options.concurrency,
          jobId: options.job,
          heldIn: options.heldIn,
          heldOut: options.heldOut,
          sealed: options.sealed,
          maxPassingFireRate: options.maxPassingFireRate,
        },
        { names: IMPROVE_FLAGS, ...(options.suite !== undefined ? { suite: loadSuite(options.suite) } : {}) },
      );
      const sandbox = await openSandbox({ unsafeNoSandbox: options.unsafeNoSandbox === true });
      const controller = new AbortController();
      const onInterrupt = () => {
        if (controller.signal.aborted) process.exit(130);
        controller.abort();
      };
      process.on('SIGINT', onInterrupt);
      try {
        const result = await withLog(global, (log) =>
          runImprove(log, { ...improveOptions, signal: controller.signal, trials: { sandbox } }),
        );
        const folder = resolve(options.report ?? join('selfharness-report', result.jobId));
        const files = writeReport(folder, result);
        if (global.json || options.json) printJson({ ...result, report: files });
        else console.log(`${formatSummary(result)}\n\nReport: ${files.markdown}\n        ${files.html}`);
      } finally {
        process.off('SIGINT', onInterrupt);
      }
    });
}

/** Runs the loop with progress on stderr: milestones as lines, trials as one line rewritten in place. */
export async function runImprove(log: EventLog, options: ImproveOptions): Promise<ImproveResult> {
  const progress = createProgress();
  try {
    return await improve(log, {
      ...options,
      onLog: (line) => {
        progress.done();
        process.stderr.write(`${line}\n`);
        options.onLog?.(line);
      },
      onTrials: (state) =>
        progress.update(
          `${state.label}: ${state.done}/${state.total} trials (${state.passed} passed, ${state.failed} failed, ${state.invalid} invalid, ${state.running} running${state.reused > 0 ? `, ${state.reused} from the log` : ''})`,
        ),
    });
  } finally {
    progress.done();
  }
}

/** Writes `report.md` and `report.html` into the folder and returns their paths. */
export function writeReport(folder: string, result: ImproveResult): { markdown: string; html: string } {
  mkdirSync(folder, { recursive: true });
  const markdown = join(folder, 'report.md');
  const html = join(folder, 'report.html');
  writeFileSync(markdown, renderMarkdownReport(result));
  writeFileSync(html, renderHtmlReport(result));
  return { markdown, html };
}

const rate = (cell: { rate: number; passed: number; valid: number } | undefined) =>
  cell === undefined ? 'n/a' : `${cell.rate.toFixed(1)}% (${cell.passed}/${cell.valid})`;

/** The terminal summary: pass rates before and after, and the decisions of each iteration. */
export function formatSummary(result: ImproveResult): string {
  const lines = [
    `Job ${result.jobId}: harness ${result.initialVersionId} → ${result.finalVersionId} for ${result.model} (${result.trialsRun} trials run now).`,
  ];
  if (result.model.startsWith('sim:'))
    lines.push('The simulated model is a test double; its numbers are no claim about real models.');
  lines.push(
    '',
    formatTable([
      { split: 'held-in', before: rate(result.before.heldIn), after: rate(result.after.heldIn) },
      { split: 'held-out', before: rate(result.before.heldOut), after: rate(result.after.heldOut) },
      { split: 'sealed', before: rate(result.before.sealed), after: rate(result.after.sealed) },
    ]),
    '',
  );
  const rows = result.iterations.flatMap((iteration) =>
    iteration.candidates.map((candidate) => ({
      iteration: iteration.iteration,
      proposal: candidate.proposalId,
      mechanism: candidate.mechanism ?? null,
      surface: candidate.surface,
      screening: candidate.screening.decision,
      gate: candidate.gate?.decision ?? null,
      'Δheld-in': candidate.gate ? candidate.gate.heldIn.deltaPoints.toFixed(1) : null,
      'Δheld-out': candidate.gate ? candidate.gate.heldOut.deltaPoints.toFixed(1) : null,
      merge: candidate.merge?.decision ?? null,
    })),
  );
  lines.push(rows.length > 0 ? formatTable(rows) : 'No candidates were proposed.');
  return lines.join('\n');
}
