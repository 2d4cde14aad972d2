import type { Command } from 'commander';
import { createEmbedder, EMBEDDER_CHOICES } from '../../analytics/embedding/index.js';
import { type MineProgress, type MiningResult, mineWeaknesses } from '../../analytics/mine.js';
import type { ClusterCard } from '../../analytics/ranking.js';
import { UserError } from '../../core/index.js';
import { databasePath, type GlobalOptions, withLog } from '../context.js';
import { formatCount, printJson } from '../output.js';
import { createProgress } from '../progress.js';

interface MineCommandOptions {
  model?: string;
  split?: string;
  top: string;
  mode: string;
  embedder?: string;
  seed: string;
  maxClusters: string;
  json?: boolean;
}

const MODES = ['kmeans', 'signature'] as const;

export function registerMine(program: Command, globals: () => GlobalOptions): void {
  program
    .command('mine')
    .description(
      'Mine failed runs for recurring failure mechanisms and print them as ranked weakness clusters (stored in weakness_clusters)',
    )
    .option('--model <model>', 'only failures of this agent model')
    .option('--split <split>', 'only failures on this split (e.g. held-in)')
    .option('--top <n>', 'how many clusters to print', '10')
    .option(
      '--mode <mode>',
      `kmeans (embeddings, k chosen by silhouette) or signature (exact mechanism signature)`,
      'kmeans',
    )
    .option('--embedder <embedder>', 'embedding model for kmeans mode: use, transformers:PATH, openai:MODEL', 'use')
    .option('--seed <n>', 'k-means seed: the same seed gives the same clusters', '1')
    .option('--max-clusters <n>', 'largest k that k-means tries (k is chosen by silhouette from 2 up to this)', '12')
    .option('--json', 'print the cluster cards as JSON')
    .addHelpText('after', `\nEmbedders:\n  ${EMBEDDER_CHOICES.join('\n  ')}`)
    .action(async (options: MineCommandOptions) => {
      const global = globals();
      const top = parseInteger('--top', options.top, 1);
      const seed = parseInteger('--seed', options.seed, 0);
      const maxClusters = parseInteger('--max-clusters', options.maxClusters, 2);
      const mode = options.mode as (typeof MODES)[number];
      if (!MODES.includes(mode)) {
        throw new UserError(`Unknown --mode "${options.mode}": use ${MODES.join(' or ')}.`);
      }
      const embedder = mode === 'kmeans' ? createEmbedder(options.embedder) : undefined;
      const progress = createProgress();
      try {
        const result = await withLog(global, (log) =>
          mineWeaknesses(log, {
            mode,
            seed,
            top,
            maxClusters,
            ...(embedder ? { embedder } : {}),
            ...(options.model !== undefined ? { model: options.model } : {}),
            ...(options.split !== undefined ? { split: options.split } : {}),
            onProgress: (state) => progress.update(describeProgress(state)),
          }),
        );
        progress.done();
        if (result.failedRuns === 0) throw noFailedRuns(global, options);
        if (global.json || options.json) printJson(result);
        else console.log(formatResult(result));
      } finally {
        await embedder?.close?.();
      }
    });
}

function parseInteger(flag: string, value: string, minimum: number): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < minimum) {
    throw new UserError(`${flag} must be an integer of at least ${minimum}, got "${value}".`);
  }
  return number;
}

function noFailedRuns(global: GlobalOptions, options: MineCommandOptions): UserError {
  const scope = [
    options.model !== undefined ? `model ${options.model}` : '',
    options.split !== undefined ? `split ${options.split}` : '',
  ].filter(Boolean);
  return new UserError(
    `No failed runs to mine in ${databasePath(global)}${scope.length > 0 ? ` for ${scope.join(', ')}` : ''}. ` +
      `Ingest traces that include failed runs (\`selfharness ingest PATH\`)${scope.length > 0 ? ', or drop --model/--split' : ''}; ` +
      'invalid (infrastructure) runs are never mined. See the runs with `selfharness status`.',
  );
}

function describeProgress(state: MineProgress): string {
  switch (state.phase) {
    case 'detect':
      return 'mine: detecting failure mechanisms';
    case 'evidence':
      return 'mine: reading evidence steps';
    case 'embed':
      return `mine: embedding ${formatCount(state.done)}/${formatCount(state.total)} failure texts (${formatCount(state.cached)} cached)`;
    case 'cluster':
      return 'mine: clustering';
    case 'rank':
      return 'mine: ranking clusters';
    case 'store':
      return 'mine: storing clusters';
  }
}

function plural(count: number, word: string): string {
  return `${formatCount(count)} ${word}${count === 1 ? '' : 's'}`;
}

/** The human report: a summary line, then one block per ranked card. */
export function formatResult(result: MiningResult): string {
  const lines: string[] = [];
  lines.push(
    `${plural(result.failedRuns, 'failed run')}, ${formatCount(result.explainedRuns)} with a detected mechanism: ` +
      `${plural(result.failures, 'failure')} grouped by ${result.mode === 'kmeans' ? `k-means (k = ${result.k})` : 'exact signature'}.`,
  );
  if (result.embedding) {
    lines.push(
      `Embedder ${result.embedder}: ${plural(result.embedding.distinct, 'distinct text')}, ${formatCount(result.embedding.embedded)} embedded now, ${formatCount(result.embedding.cached)} from the cache.`,
    );
  }
  if (result.dropped.clusters > 0) {
    lines.push(
      `${plural(result.dropped.clusters, 'group')} (${plural(result.dropped.failures, 'failure')}) left out: a cluster needs failures from at least 2 runs across at least 2 tasks.`,
    );
  }
  if (result.clusters.length === 0) {
    lines.push('', 'No recurring weakness: no group of failures spans at least 2 runs and 2 tasks.');
    return lines.join('\n');
  }
  for (const card of result.clusters) lines.push('', ...formatCard(card));
  return lines.join('\n');
}

function formatCard(card: ClusterCard): string[] {
  const lines = [
    `#${card.rank}  ${card.label}`,
    `    score ${card.score} · criticality ${card.criticality} · ${plural(card.failureCount, 'failure')} in ${plural(card.runCount, 'run')} across ${plural(card.taskCount, 'task')} · cluster ${card.clusterId}`,
    `    mechanisms: ${card.mechanisms.map((entry) => `${entry.mechanism} (${entry.failures})`).join(', ')}`,
    `    models: ${card.models.join(', ')}`,
    `    tasks: ${listSome(card.tasks, 6)}`,
    '    evidence:',
  ];
  for (const evidence of card.evidence) {
    const steps =
      evidence.steps.length > 0
        ? `step${evidence.steps.length === 1 ? '' : 's'} ${listSome(evidence.steps.map(String), 6)}`
        : 'no steps';
    lines.push(
      `      - run ${evidence.runId} (${evidence.task}, ${evidence.model}), ${steps}: ${shorten(evidence.excerpt, 140)}`,
    );
    const call = evidence.calls[0];
    if (call) {
      const exit = call.exitCode === null ? '' : ` → exit ${call.exitCode}`;
      lines.push(
        `          $ ${shorten(call.command ?? call.tool, 80)}${exit}${call.output ? `: ${shorten(call.output, 100)}` : ''}`,
      );
    }
  }
  lines.push(
    card.preserve.passingRunCount === 0
      ? '    preserve: no passing runs on these tasks'
      : `    preserve: ${plural(card.preserve.passingRunCount, 'passing run')} on these tasks (${listSome(
          card.preserve.passingRuns.map((run) => run.runId),
          3,
        )})`,
  );
  return lines;
}

function listSome(values: readonly string[], shown: number): string {
  const head = values.slice(0, shown).join(', ');
  return values.length > shown ? `${head} and ${values.length - shown} more` : head;
}

function shorten(text: string, length: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > length ? `${flat.slice(0, length - 1)}…` : flat;
}
