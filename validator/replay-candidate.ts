import { type EventLog, UserError, type ValidationDecided } from '../core/index.js';
import { applySpecPatch, type HarnessSpec, type PatchOperation } from '../harness/index.js';
import { recordDecision } from './decisions.js';
import { type LoggedRun, loadLoggedRuns } from './logged-run.js';
import { resolveHarness } from './promote.js';
import type { Proposal } from './proposals.js';
import { type ShadowOptions, type ShadowTrace, shadowReplay } from './replay.js';
import {
  lastStep,
  type ReplaySummary,
  type ScreeningOptions,
  type ScreeningVerdict,
  screenReplay,
  summarizeReplay,
  type TargetTrace,
} from './screening.js';

/**
 * Shadow replay of one candidate against the log, wired together: the candidate's spec (base + patch), its target
 * failures (the members of its weakness cluster), passing runs of the same models, the replay of each, the summary,
 * the screening verdict, and the `validation-decide` event (stage `replay`) that records it.
 */

/** What replay needs of a candidate: the proposer's `Candidate` and a stored proposal both fit. */
export interface ReplayCandidate {
  readonly proposalId: string;
  readonly patch: readonly PatchOperation[];
  readonly clusterId?: string;
  readonly mechanism?: string;
  readonly baseVersionId?: string;
}

export interface ReplayCandidateOptions extends ShadowOptions, ScreeningOptions {
  /** The harness the patch applies to; by default the candidate's base version from the log. */
  readonly baseSpec?: HarnessSpec;
  /** Passing runs replayed besides those of the target tasks, a stable sample (default 1000). */
  readonly maxPassingRuns?: number;
  /** Append the decision to the log (default true). */
  readonly record?: boolean;
  readonly time?: string;
  readonly onProgress?: (progress: { readonly done: number; readonly total: number }) => void;
}

export interface CandidateReplay {
  readonly proposalId: string;
  readonly spec?: HarnessSpec;
  readonly targets: readonly TargetTrace[];
  readonly passing: readonly ShadowTrace[];
  readonly summary?: ReplaySummary;
  readonly verdict: ScreeningVerdict;
  readonly event?: ValidationDecided;
  /** False when the log already held this decision on these numbers (or `record` was off). */
  readonly appended: boolean;
}

interface MemberRow extends Record<string, unknown> {
  run_id: string;
  first_step: number | null;
}

const HAS_MINING_TABLES = `
SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'weakness_cluster_members'`;

/** Members of a cluster in the latest mining that produced it, with each run's earliest evidence step. */
const CLUSTER_MEMBERS = `
SELECT run_id, min(coalesce(first_step, list_min(evidence_steps))) AS first_step
FROM weakness_cluster_members
WHERE cluster_id = $1
  AND mining_id = (SELECT mining_id FROM weakness_clusters WHERE cluster_id = $1 ORDER BY created_at DESC LIMIT 1)
GROUP BY run_id`;

/** Detections of a mechanism in the latest mining, for a candidate that names no cluster. */
const MECHANISM_MEMBERS = `
SELECT run_id, min(coalesce(first_step, list_min(evidence_steps))) AS first_step
FROM weakness_cluster_members
WHERE mechanism = $1
  AND mining_id = (SELECT mining_id FROM weakness_clusters ORDER BY created_at DESC LIMIT 1)
GROUP BY run_id`;

/** The failed runs a candidate targets, with the step where each failure first showed (when mining knows it). */
export async function loadTargetMembers(
  log: EventLog,
  target: { clusterId?: string; mechanism?: string },
): Promise<Map<string, number | undefined>> {
  const [tables] = await log.query<{ n: bigint }>(HAS_MINING_TABLES);
  if (Number(tables?.n ?? 0) === 0)
    throw new UserError('No weakness clusters in this database: mine failures first with `selfharness mine`.');
  let rows: MemberRow[];
  if (target.clusterId !== undefined) {
    rows = await log.query<MemberRow>(CLUSTER_MEMBERS, [target.clusterId]);
    if (rows.length === 0)
      throw new UserError(
        `Unknown weakness cluster ${target.clusterId}: it is in no mining result. List clusters with \`selfharness mine\`.`,
      );
  } else if (target.mechanism !== undefined) {
    rows = await log.query<MemberRow>(MECHANISM_MEMBERS, [target.mechanism]);
  } else {
    throw new UserError(
      'The candidate names neither a weakness cluster nor a mechanism, so it has no target to replay.',
    );
  }
  return new Map(rows.map((row) => [row.run_id, row.first_step === null ? undefined : Number(row.first_step)]));
}

/** The candidate a stored proposal describes. */
export function candidateOfProposal(proposal: Proposal): ReplayCandidate {
  return {
    proposalId: proposal.proposalId,
    patch: proposal.patch as PatchOperation[],
    baseVersionId: proposal.baseVersionId,
    ...(proposal.clusterId !== undefined ? { clusterId: proposal.clusterId } : {}),
    ...(proposal.mechanism !== undefined ? { mechanism: proposal.mechanism } : {}),
  };
}

/**
 * Replays a candidate against the log and screens it. A patch that does not apply to its base is screened out with
 * the patch's own reasons. The verdict is recorded as a `validation-decide` event (stage `replay`, decision
 * `screened-out` or `accepted`) unless `record` is false.
 */
export async function replayCandidate(
  log: EventLog,
  candidate: ReplayCandidate,
  options: ReplayCandidateOptions = {},
): Promise<CandidateReplay> {
  const base = options.baseSpec ?? (await resolveHarness(log, candidate.baseVersionId ?? 'default')).spec;
  const applied = applySpecPatch(base, candidate.patch);
  const record = async (verdict: ScreeningVerdict) => {
    if (options.record === false) return { appended: false };
    return recordDecision(
      log,
      {
        proposalId: candidate.proposalId,
        stage: 'replay',
        decision: verdict.screenedOut ? 'screened-out' : 'accepted',
        gate: 'shadow-replay',
        reasons: verdict.reasons,
        metrics: {
          ...(candidate.clusterId !== undefined ? { clusterId: candidate.clusterId } : {}),
          ...(candidate.mechanism !== undefined ? { mechanism: candidate.mechanism } : {}),
          ...verdict.metrics,
        },
      },
      options.time,
    );
  };
  if (!applied.ok) {
    const verdict: ScreeningVerdict = {
      screenedOut: true,
      reasons: applied.reasons.map((reason) => `The patch does not apply to its base harness: ${reason}.`),
      metrics: {},
    };
    return { proposalId: candidate.proposalId, targets: [], passing: [], verdict, ...(await record(verdict)) };
  }
  const spec = applied.spec;
  const members = await loadTargetMembers(log, candidate);
  const targetRuns = (await loadLoggedRuns(log, { runIds: [...members.keys()] })).filter(
    (run) => run.outcome === 'failed',
  );
  const models = [...new Set(targetRuns.flatMap((run) => (run.model !== undefined ? [run.model] : [])))];
  const tasks = [...new Set(targetRuns.map((run) => run.task))];
  const modelFilter = models.length > 0 ? { models } : {};
  const sameTaskRuns = tasks.length > 0 ? await loadLoggedRuns(log, { outcome: 'passed', tasks, ...modelFilter }) : [];
  const sampleRuns = await loadLoggedRuns(log, {
    outcome: 'passed',
    ...modelFilter,
    limit: options.maxPassingRuns ?? 1000,
  });
  const passingRuns = [...new Map([...sameTaskRuns, ...sampleRuns].map((run) => [run.runId, run])).values()];
  const total = targetRuns.length + passingRuns.length;
  let done = 0;
  const replay = async (run: LoggedRun) => {
    const trace = await shadowReplay(spec, run, options);
    done += 1;
    if (done % 100 === 0 || done === total) options.onProgress?.({ done, total });
    return trace;
  };
  const targets: TargetTrace[] = [];
  for (const run of targetRuns) {
    const trace = await replay(run);
    targets.push({ trace, firstEvidenceStep: members.get(run.runId) ?? lastStep(run) });
  }
  const passing: ShadowTrace[] = [];
  for (const run of passingRuns) passing.push(await replay(run));
  const summary = summarizeReplay(targets, passing, new Set(tasks));
  const verdict = screenReplay(summary, options);
  const recorded = await record(verdict);
  return { proposalId: candidate.proposalId, spec, targets, passing, summary, verdict, ...recorded };
}
