import { listValue } from '@duckdb/node-api';
import type { ClusterCard, EvidenceExcerpt, PassingRun } from '../analytics/ranking.js';
import { clusterScore, mechanismTitle } from '../analytics/ranking.js';
import { type EventLog, UserError } from '../core/index.js';
import { type EditableSurface, editableSurfaces, type HarnessSpec, type HarnessVersion } from '../harness/index.js';
import { listProposals, type ProposalRecord } from './proposals.js';

/**
 * The brief of one proposal round: what a proposer may see. The top ranked weakness clusters with their evidence, the
 * passing runs a fix must not break, the current harness and its editable surfaces, and the earlier proposals with
 * their outcomes. Only runs of the splits shown are in it: held-out and sealed runs (their ids, tasks and text) never
 * reach a proposer, so held-out results stay a test of generalisation.
 */

/** Splits that are never shown to a proposer. */
export const HIDDEN_SPLITS = ['held-out', 'sealed'] as const;
/** Stands for runs without a split (imported traces), when they are to be shown. */
export const UNSPLIT = 'unsplit';

/** An earlier proposal as a proposer sees it: the edit and what became of it. */
export interface EarlierProposal {
  readonly proposalId: string;
  readonly baseVersionId: string;
  readonly clusterId?: string;
  readonly mechanism?: string;
  readonly surface: string;
  readonly patch: readonly unknown[];
  readonly expectedEffect: string;
  readonly status: ProposalRecord['status'];
  /** The reasons of its latest decision, with anything naming a hidden run or task removed. */
  readonly reasons: readonly string[];
  /** The harness it yields, when its base version is known: an edit giving the same harness is the same edit. */
  readonly resultVersionId?: string;
}

export interface ProposalBrief {
  readonly baseVersionId: string;
  readonly spec: HarnessSpec;
  readonly surfaces: readonly EditableSurface[];
  readonly splitsShown: readonly string[];
  /** Ranked clusters (best first), restricted to runs of the splits shown. */
  readonly clusters: readonly ClusterCard[];
  readonly earlierProposals: readonly EarlierProposal[];
}

export interface BriefOptions {
  readonly baseVersion: HarnessVersion;
  /** Ranked cluster cards, as mining returns them. */
  readonly clusters: readonly ClusterCard[];
  /** Splits whose runs may be shown (default `held-in`); `unsplit` stands for runs without a split. */
  readonly splitsShown?: readonly string[];
  /** Clusters in the brief (default 5). */
  readonly top?: number;
  readonly surfaces?: readonly EditableSurface[];
}

const RUNS_BY_ID = `
SELECT run_id, task, model, split FROM runs WHERE run_id IN (SELECT unnest($1::VARCHAR[]))`;

const HIDDEN_RUNS = `
SELECT run_id, task,
       task IN (SELECT task FROM runs WHERE coalesce(split, '${UNSPLIT}') IN (SELECT unnest($1::VARCHAR[]))) AS shown_task
FROM runs
WHERE coalesce(split, '${UNSPLIT}') NOT IN (SELECT unnest($1::VARCHAR[]))`;

const MEMBERS_OF = `
SELECT DISTINCT cluster_id, run_id, mechanism FROM weakness_cluster_members
WHERE cluster_id IN (SELECT unnest($1::VARCHAR[]))`;

interface RunRow extends Record<string, unknown> {
  run_id: string;
  task: string | null;
  model: string | null;
  split: string | null;
}

/** Checks the splits to show: held-out and sealed runs are never in a brief. */
export function checkSplitsShown(splits: readonly string[]): string[] {
  if (splits.length === 0) throw new UserError('Show the proposer at least one split, e.g. held-in.');
  for (const split of splits)
    if ((HIDDEN_SPLITS as readonly string[]).includes(split))
      throw new UserError(
        `The ${split} split is never shown to a proposer: its runs test whether an edit generalises. Use held-in (or ${UNSPLIT} for runs without a split).`,
      );
  return [...new Set(splits)];
}

/**
 * Builds the brief for one round. Cluster cards are cut down to the runs of the splits shown: their run lists,
 * evidence and passing runs lose every other run, their counts are recomputed, and a card that lost runs gets a label
 * made of its mechanisms alone (a mined label may quote a hidden run). A card with no run left is dropped.
 */
export async function buildBrief(log: EventLog, options: BriefOptions): Promise<ProposalBrief> {
  const splitsShown = checkSplitsShown(options.splitsShown ?? ['held-in']);
  const top = options.top ?? 5;
  const surfaces = options.surfaces ?? editableSurfaces;

  const runIds = new Set<string>();
  for (const card of options.clusters) {
    for (const runId of card.runIds) runIds.add(runId);
    for (const evidence of card.evidence) runIds.add(evidence.runId);
    for (const run of card.preserve.passingRuns) runIds.add(run.runId);
  }
  const rows = runIds.size === 0 ? [] : await log.query<RunRow>(RUNS_BY_ID, [listValue([...runIds].sort())]);
  const shownRuns = new Map(
    rows.filter((row) => splitsShown.includes(row.split ?? UNSPLIT)).map((row) => [row.run_id, row]),
  );
  const membersByCluster = await loadMembers(
    log,
    options.clusters.map((card) => card.clusterId),
  );

  const clusters: ClusterCard[] = [];
  for (const card of options.clusters) {
    const restricted = restrictCard(card, shownRuns, membersByCluster.get(card.clusterId));
    if (restricted) clusters.push(restricted);
  }
  clusters.sort((left, right) => left.rank - right.rank);
  const ranked = clusters.slice(0, top).map((card, index) => ({ ...card, rank: index + 1 }));

  const records = await listProposals(log);
  const hiddenNames = records.some((record) => (record.decision?.reasons.length ?? 0) > 0)
    ? await loadHiddenNames(log, splitsShown)
    : new Set<string>();
  const earlierProposals = records.map(
    (record): EarlierProposal => ({
      proposalId: record.proposalId,
      baseVersionId: record.baseVersionId,
      ...(record.clusterId ? { clusterId: record.clusterId } : {}),
      ...(record.mechanism ? { mechanism: record.mechanism } : {}),
      surface: record.surface,
      patch: record.patch,
      expectedEffect: record.expectedEffect,
      status: record.status,
      reasons: (record.decision?.reasons ?? []).map((reason) => redact(reason, hiddenNames)),
      ...(record.resultVersionId ? { resultVersionId: record.resultVersionId } : {}),
    }),
  );

  return {
    baseVersionId: options.baseVersion.versionId,
    spec: options.baseVersion.spec,
    surfaces,
    splitsShown,
    clusters: ranked,
    earlierProposals,
  };
}

/** Ids and tasks of the runs that are not shown (a task that also has shown runs is no secret). */
async function loadHiddenNames(log: EventLog, splitsShown: readonly string[]): Promise<Set<string>> {
  const rows = await log.query<{ run_id: string; task: string | null; shown_task: boolean }>(HIDDEN_RUNS, [
    listValue([...splitsShown]),
  ]);
  const names = new Set<string>();
  for (const row of rows) {
    names.add(row.run_id);
    if (row.task && !row.shown_task) names.add(row.task);
  }
  return names;
}

async function loadMembers(
  log: EventLog,
  clusterIds: readonly string[],
): Promise<Map<string, { runId: string; mechanism: string }[]>> {
  const byCluster = new Map<string, { runId: string; mechanism: string }[]>();
  if (clusterIds.length === 0) return byCluster;
  const exists = await log.query<{ n: bigint }>(
    "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'weakness_cluster_members'",
  );
  if (Number(exists[0]?.n ?? 0) === 0) return byCluster;
  const rows = await log.query<{ cluster_id: string; run_id: string; mechanism: string }>(MEMBERS_OF, [
    listValue([...clusterIds]),
  ]);
  for (const row of rows) {
    const members = byCluster.get(row.cluster_id) ?? [];
    members.push({ runId: row.run_id, mechanism: row.mechanism });
    byCluster.set(row.cluster_id, members);
  }
  return byCluster;
}

/** A card restricted to shown runs, or undefined when none of its failed runs is shown. */
function restrictCard(
  card: ClusterCard,
  shownRuns: ReadonlyMap<string, RunRow>,
  members: readonly { runId: string; mechanism: string }[] | undefined,
): ClusterCard | undefined {
  const runIds = card.runIds.filter((runId) => shownRuns.has(runId));
  if (runIds.length === 0) return undefined;
  const evidence: EvidenceExcerpt[] = card.evidence.filter((entry) => shownRuns.has(entry.runId));
  const passingRuns: PassingRun[] = card.preserve.passingRuns.filter((run) => shownRuns.has(run.runId));
  const complete =
    runIds.length === card.runIds.length &&
    evidence.length === card.evidence.length &&
    passingRuns.length === card.preserve.passingRuns.length;
  if (complete) return card;

  const tasks = [...new Set(runIds.map((runId) => shownRuns.get(runId)?.task ?? '(no task)'))].sort();
  const models = [...new Set(runIds.map((runId) => shownRuns.get(runId)?.model ?? '(no model)'))].sort();
  const mechanismRuns = new Map<string, Set<string>>();
  const shownMembers = (members ?? []).filter((member) => shownRuns.has(member.runId));
  const sources =
    shownMembers.length > 0
      ? shownMembers
      : evidence.map((entry) => ({ runId: entry.runId, mechanism: entry.mechanism }));
  for (const member of sources) {
    const runs = mechanismRuns.get(member.mechanism) ?? new Set<string>();
    runs.add(member.runId);
    mechanismRuns.set(member.mechanism, runs);
  }
  const mechanisms = [...mechanismRuns.entries()]
    .map(([mechanism, runs]) => ({ mechanism, failures: runs.size }))
    .sort((left, right) => right.failures - left.failures || (left.mechanism < right.mechanism ? -1 : 1));
  const primary =
    mechanisms.length > 0
      ? mechanisms
      : card.mechanisms.slice(0, 1).map((entry) => ({ ...entry, failures: runIds.length }));
  const label = primary
    .slice(0, 2)
    .map((entry, index) =>
      index === 0 ? mechanismTitle(entry.mechanism) : mechanismTitle(entry.mechanism).toLowerCase(),
    )
    .join(' + ');
  const { signature: _signature, ...rest } = card;
  return {
    ...rest,
    label,
    mechanisms: primary,
    failureCount: primary.reduce((total, entry) => total + entry.failures, 0),
    runCount: runIds.length,
    taskCount: tasks.length,
    tasks,
    models,
    runIds,
    score: Math.round(clusterScore(card.criticality, runIds.length, tasks.length) * 1000) / 1000,
    evidence,
    preserve: {
      passingRunCount:
        passingRuns.length < card.preserve.passingRuns.length ? passingRuns.length : card.preserve.passingRunCount,
      passingRuns,
    },
  };
}

/** Replaces every hidden run id or task named in a text. */
function redact(text: string, hiddenNames: ReadonlySet<string>): string {
  let result = text;
  for (const name of hiddenNames)
    if (name.length >= 3 && result.includes(name)) result = result.replaceAll(name, '[hidden]');
  return result;
}
