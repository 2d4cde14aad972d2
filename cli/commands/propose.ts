import type { Command } from 'commander';
import { createEmbedder } from '../../analytics/embedding/index.js';
import { OpenAiLlm, readLlmConfig } from '../../analytics/llm.js';
import { mineWeaknesses } from '../../analytics/mine.js';
import type { ClusterCard } from '../../analytics/ranking.js';
import { type EventLog, UserError } from '../../core/index.js';
import { type HarnessVersion, resolveVersion } from '../../harness/index.js';
import {
  buildBrief,
  type Candidate,
  checkSplitsShown,
  LlmProposer,
  listProposals,
  type ProposalBrief,
  type ProposalRecord,
  type Proposer,
  type RejectedCandidate,
  RuleProposer,
  recordProposals,
  recordRejectedProposals,
  UNSPLIT,
} from '../../proposer/index.js';
import { type GlobalOptions, withLog } from '../context.js';
import { formatTable, printJson } from '../output.js';
import { createProgress } from '../progress.js';

interface ProposeCommandOptions {
  harness: string;
  candidates: string;
  proposer: string;
  model?: string;
  llmModel?: string;
  split: string;
  top: string;
  mode: string;
  embedder?: string;
  stored?: boolean;
  job?: string;
  iteration?: string;
  json?: boolean;
}

const PROPOSERS = ['rules', 'llm'] as const;
const MODES = ['signature', 'kmeans'] as const;

const LATEST_STORED_CLUSTERS = `
SELECT CAST(card AS VARCHAR) AS card FROM weakness_clusters
WHERE mining_id = (SELECT mining_id FROM weakness_clusters ORDER BY created_at DESC, mining_id LIMIT 1)
ORDER BY rank`;

/** `selfharness propose` and `selfharness proposals`: candidate harness edits from mined weaknesses, as events. */
export function registerPropose(program: Command, globals: () => GlobalOptions): void {
  program
    .command('propose')
    .description(
      'Mine the failures of the shown split, brief a proposer, and record its candidate harness edits as proposals',
    )
    .option('--harness <version>', 'the base harness version (`default` or an id prefix)', 'default')
    .option('--candidates <k>', 'the most candidates to propose', '3')
    .option(
      '--proposer <proposer>',
      'rules (offline, from the mechanisms) or llm (SELFHARNESS_LLM_* endpoint)',
      'rules',
    )
    .option('--model <model>', 'only failures of this agent model')
    .option('--llm-model <model>', 'the proposing model for --proposer llm (default: $SELFHARNESS_LLM_MODEL)')
    .option(
      '--split <splits>',
      `splits the proposer may see, comma-separated (${UNSPLIT}: runs without a split); never held-out or sealed`,
      'held-in',
    )
    .option('--top <n>', 'weakness clusters in the brief', '5')
    .option('--mode <mode>', 'mining: signature (exact mechanism signature) or kmeans (embeddings)', 'signature')
    .option('--embedder <embedder>', 'embedding model for --mode kmeans', 'use')
    .option('--stored', 'use the clusters of the latest `selfharness mine` instead of mining now')
    .option('--job <id>', 'the improve job the proposals belong to')
    .option('--iteration <n>', 'the iteration of that job')
    .option('--json', 'print the brief summary, candidates and rejections as JSON')
    .action(async (options: ProposeCommandOptions) => {
      const global = globals();
      const count = parseInteger('--candidates', options.candidates, 0);
      const top = parseInteger('--top', options.top, 1);
      const iteration = options.iteration === undefined ? undefined : parseInteger('--iteration', options.iteration, 0);
      const splitsShown = checkSplitsShown(
        options.split
          .split(',')
          .map((split) => split.trim())
          .filter(Boolean),
      );
      const mode = options.mode as (typeof MODES)[number];
      if (!MODES.includes(mode)) throw new UserError(`Unknown --mode "${options.mode}": use ${MODES.join(' or ')}.`);
      const proposer = createProposer(options);
      const embedder = mode === 'kmeans' && !options.stored ? createEmbedder(options.embedder) : undefined;
      const progress = createProgress();
      try {
        const outcome = await withLog(global, async (log) => {
          const base = await resolveVersion(log, options.harness);
          progress.update(options.stored ? 'propose: reading stored clusters' : 'propose: mining weaknesses');
          const clusters = options.stored
            ? await readStoredClusters(log)
            : (
                await mineWeaknesses(log, {
                  mode,
                  ...(embedder ? { embedder } : {}),
                  ...(options.model !== undefined ? { model: options.model } : {}),
                  ...(splitsShown.length === 1 && splitsShown[0] !== UNSPLIT ? { split: splitsShown[0] } : {}),
                  onProgress: (state) => progress.update(`propose: mining (${state.phase})`),
                })
              ).clusters;
          progress.update('propose: building the brief');
          const brief = await buildBrief(log, { baseVersion: base, clusters, splitsShown, top });
          progress.update(`propose: asking ${proposer.name} for ${count} candidates`);
          const result = await proposer.propose(brief, { count });
          const recordOptions = {
            baseVersionId: base.versionId,
            proposer: proposer.name,
            ...(options.job !== undefined ? { jobId: options.job } : {}),
            ...(iteration !== undefined ? { iteration } : {}),
          };
          const known = new Set((await listProposals(log)).map((record) => record.proposalId));
          await recordProposals(log, result.candidates, recordOptions);
          await recordRejectedProposals(log, result.rejected, recordOptions);
          return { base, brief, result, known };
        });
        progress.done();
        const report = {
          baseVersionId: outcome.base.versionId,
          proposer: proposer.name,
          splitsShown,
          clusters: outcome.brief.clusters.map((card) => ({
            clusterId: card.clusterId,
            rank: card.rank,
            label: card.label,
            runCount: card.runCount,
            taskCount: card.taskCount,
          })),
          candidates: outcome.result.candidates.map((candidate) => ({
            ...candidate,
            recorded: !outcome.known.has(candidate.proposalId),
          })),
          rejected: outcome.result.rejected,
        };
        if (global.json || options.json) printJson(report);
        else console.log(formatProposals(outcome.base, outcome.brief, outcome.result, outcome.known, proposer.name));
      } finally {
        await embedder?.close?.();
      }
    });

  program
    .command('proposals')
    .description('List recorded proposals, oldest first, with where each stands (proposed, screened, accepted, …)')
    .option('--status <status>', 'only proposals with this status')
    .option('--json', 'print the proposals as JSON')
    .action(async (options: { status?: string; json?: boolean }) => {
      const global = globals();
      const records = (await withLog(global, (log) => listProposals(log), true)).filter(
        (record) => options.status === undefined || record.status === options.status,
      );
      if (global.json || options.json) printJson(records);
      else console.log(formatRecords(records));
    });
}

function createProposer(options: ProposeCommandOptions): Proposer {
  const kind = options.proposer as (typeof PROPOSERS)[number];
  if (!PROPOSERS.includes(kind))
    throw new UserError(`Unknown --proposer "${options.proposer}": use ${PROPOSERS.join(' or ')}.`);
  if (kind === 'rules') return new RuleProposer();
  const config = readLlmConfig(process.env, options.llmModel ? { model: options.llmModel } : {});
  return new LlmProposer(new OpenAiLlm(config));
}

async function readStoredClusters(log: EventLog): Promise<ClusterCard[]> {
  const exists = await log.query<{ n: bigint }>(
    "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'weakness_clusters'",
  );
  const rows = Number(exists[0]?.n ?? 0) === 0 ? [] : await log.query<{ card: string }>(LATEST_STORED_CLUSTERS);
  if (rows.length === 0)
    throw new UserError(
      'No stored weakness clusters: run `selfharness mine` first, or leave out --stored to mine now.',
    );
  return rows.map((row) => JSON.parse(row.card) as ClusterCard);
}

function parseInteger(flag: string, value: string, minimum: number): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < minimum)
    throw new UserError(`${flag} must be a whole number of at least ${minimum}, not "${value}".`);
  return number;
}

function describePatch(candidate: Candidate): string[] {
  return candidate.patch.map((operation) => {
    if ('from' in operation) return `${operation.op} ${operation.from} → ${operation.path}`;
    if (!('value' in operation)) return `${operation.op} ${operation.path}`;
    const value = JSON.stringify(operation.value);
    return `${operation.op} ${operation.path} ${value.length > 240 ? `${value.slice(0, 239)}…` : value}`;
  });
}

/** The human report: the base, the clusters briefed, each candidate, then the rejections. */
export function formatProposals(
  base: HarnessVersion,
  brief: ProposalBrief,
  result: { candidates: readonly Candidate[]; rejected: readonly RejectedCandidate[] },
  known: ReadonlySet<string>,
  proposer: string,
): string {
  const lines = [
    `Harness ${base.versionId}; ${brief.clusters.length} weakness cluster${brief.clusters.length === 1 ? '' : 's'} from ${brief.splitsShown.join(', ')} runs; proposer ${proposer}.`,
  ];
  if (result.candidates.length === 0) {
    lines.push(
      '',
      brief.clusters.length === 0
        ? 'No candidate: no recurring weakness to fix (a cluster needs failures in at least 2 runs across 2 tasks).'
        : 'No candidate: nothing new to propose for these clusters (see the rejections below).',
    );
  }
  result.candidates.forEach((candidate, index) => {
    const card = brief.clusters.find((cluster) => cluster.clusterId === candidate.clusterId);
    lines.push(
      '',
      `${index + 1}. proposal ${candidate.proposalId}${known.has(candidate.proposalId) ? ' (recorded before)' : ''} · risk ${candidate.risk}`,
      `   cluster ${candidate.clusterId}${card ? ` (#${card.rank} ${card.label})` : ''} · mechanism ${candidate.mechanism}`,
      `   surface ${candidate.surface}`,
      ...describePatch(candidate).map((line) => `   patch: ${line}`),
      `   expected: ${candidate.expectedEffect}`,
      `   preserve: ${candidate.preserve}`,
    );
  });
  if (result.rejected.length > 0) {
    lines.push('', `${result.rejected.length} rejected:`);
    for (const entry of result.rejected) lines.push(`  - ${entry.reason}`);
  }
  return lines.join('\n');
}

function formatRecords(records: readonly ProposalRecord[]): string {
  if (records.length === 0) return 'No proposals yet: make some with `selfharness propose`.';
  return formatTable(
    records.map((record) => ({
      proposal: record.proposalId,
      base: record.baseVersionId,
      proposer: record.proposer,
      cluster: record.clusterId ?? null,
      surface: record.surface,
      risk: record.risk,
      status: record.status,
      reasons: record.decision?.reasons.join('; ') ?? null,
      created: record.createdAt ?? null,
    })),
  );
}
