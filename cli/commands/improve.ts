import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { OpenAiLlm, readLlmConfig } from '../../analytics/llm.js';
import { type EventLog, UserError } from '../../core/index.js';
import { LlmProposer, type Proposer, RuleProposer } from '../../proposer/index.js';
import { DEFAULT_SUITE_ROOT, loadSuite, openSandbox, type Split } from '../../tasks/index.js';
import {
  type GateMode,
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
  iterations: string;
  candidates: string;
  gate: string;
  attempts: string;
  concurrency: string;
  proposer: string;
  llmModel?: string;
  seed: string;
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

const GATES = ['strict', 'paper'] as const;
const PROPOSERS = ['rules', 'llm'] as const;

/** `selfharness improve`: the self-improvement loop, resumable from the log, ending with a report folder. */
export function registerImprove(program: Command, globals: () => GlobalOptions): void {
  program
    .command('improve')
    .description(
      'Improve the harness for a model: baseline trials, mine, propose, replay screen, paired trials, gate, promote; repeated. Resumable: run the same command again to continue',
    )
    .requiredOption('--model <model>', 'the agent model: sim:PROFILE or openai:MODEL')
    .option('--iterations <n>', 'improvement rounds', '2')
    .option('--candidates <k>', 'candidate edits per round', '3')
    .option('--gate <gate>', 'strict (paired test, intervals, per-task check) or paper (the paper’s rule)', 'strict')
    .option('--attempts <n>', 'attempts per task and version', '2')
    .option('--concurrency <n>', 'trials at the same time', '2')
    .option('--proposer <proposer>', 'rules (offline) or llm (SELFHARNESS_LLM_* endpoint)', 'rules')
    .option('--llm-model <model>', 'the proposing model for --proposer llm (default: $SELFHARNESS_LLM_MODEL)')
    .option('--seed <n>', 'seed of the trials', '1')
    .option(
      '--job <id>',
      'the job to start or continue (default: derived from the model and options, printed at start)',
    )
    .option('--report <dir>', 'where the report goes (default: ./selfharness-report/<job>)')
    .option('--suite <dir>', 'a task suite folder with splits.json and suite/ (default: the bundled one)')
    .option('--held-in <ids>', 'held-in task ids to use, comma-separated (default: the whole split)')
    .option('--held-out <ids>', 'held-out task ids to use, comma-separated (default: the whole split)')
    .option('--sealed <ids>', 'sealed task ids for the final report, comma-separated; "none" for none')
    .option('--max-passing-fire-rate <rate>', 'screening: the most a candidate may fire on passing runs', '0.5')
    .option('--unsafe-no-sandbox', 'run trials without bubblewrap (only for commands you trust)')
    .option('--json', 'print the result as JSON')
    .action(async (options: ImproveCommandOptions) => {
      const global = globals();
      const improveOptions = parseOptions(options);
      const sandbox = await openSandbox({ unsafeNoSandbox: options.unsafeNoSandbox === true });
      const controller = new AbortController();
      const onInterrupt = () => {
        if (controller.signal.aborted) process.exit(130);
        controller.abort();
      };
      process.on('SIGINT', onInterrupt);
      try {
        const result = await withLog(global, (log) =>
          runImprove(log, { ...improveOptions, trials: { sandbox, signal: controller.signal } }),
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

function parseOptions(options: ImproveCommandOptions): ImproveOptions {
  const gate = options.gate as GateMode;
  if (!GATES.includes(gate)) throw new UserError(`Unknown --gate "${options.gate}": use ${GATES.join(' or ')}.`);
  const suite = loadSuite(options.suite ?? DEFAULT_SUITE_ROOT);
  const taskIds: Partial<Record<Split, string[]>> = {};
  const list = (value: string | undefined) =>
    value === undefined
      ? undefined
      : value === 'none'
        ? []
        : value
            .split(',')
            .map((entry) => entry.trim())
            .filter(Boolean);
  for (const [split, value] of [
    ['held-in', options.heldIn],
    ['held-out', options.heldOut],
    ['sealed', options.sealed],
  ] as const) {
    const ids = list(value);
    if (ids !== undefined) taskIds[split] = ids;
  }
  const rate = Number(options.maxPassingFireRate ?? '0.5');
  if (!Number.isFinite(rate) || rate < 0 || rate > 1)
    throw new UserError(`--max-passing-fire-rate must be a number from 0 to 1, not "${options.maxPassingFireRate}".`);
  return {
    model: options.model,
    iterations: parseInteger('--iterations', options.iterations, 1),
    candidates: parseInteger('--candidates', options.candidates, 1),
    gate,
    attempts: parseInteger('--attempts', options.attempts, 1),
    concurrency: parseInteger('--concurrency', options.concurrency, 1),
    seed: parseInteger('--seed', options.seed, 0),
    proposer: createProposer(options),
    suite,
    taskIds,
    maxPassingFireRate: rate,
    ...(options.job !== undefined ? { jobId: options.job } : {}),
  };
}

function createProposer(options: ImproveCommandOptions): Proposer {
  const kind = options.proposer as (typeof PROPOSERS)[number];
  if (!PROPOSERS.includes(kind))
    throw new UserError(`Unknown --proposer "${options.proposer}": use ${PROPOSERS.join(' or ')}.`);
  if (kind === 'rules') return new RuleProposer();
  const config = readLlmConfig(process.env, options.llmModel ? { model: options.llmModel } : {});
  return new LlmProposer(new OpenAiLlm(config));
}

function parseInteger(flag: string, value: string, minimum: number): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < minimum)
    throw new UserError(`${flag} must be a whole number of at least ${minimum}, not "${value}".`);
  return number;
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
