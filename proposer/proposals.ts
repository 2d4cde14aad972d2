import type { AppendResult, EventLog, ProposalCreated, RejectedRecord } from '../core/index.js';
import { applySpecPatch, computeVersionId, listVersions } from '../harness/index.js';
import type { Candidate, RejectedCandidate } from './candidate.js';

/**
 * Proposals are events: each candidate becomes a `proposal-create` event in the stream `proposal:<proposalId>`, whose
 * id comes from the proposal id (base version + canonical patch), so recording the same edit again adds nothing.
 * Their outcomes are the `validation-decide` events of the same proposal, written by the validator.
 */

export interface RecordOptions {
  readonly baseVersionId: string;
  readonly jobId?: string;
  readonly iteration?: number;
  /** Who proposed: `rules`, `llm:<model>`. */
  readonly proposer: string;
  /** ISO 8601 time of the events (default: now). */
  readonly time?: string;
}

/** The event recording one candidate. */
export function proposalEvent(candidate: Candidate, options: RecordOptions): ProposalCreated {
  return {
    id: `proposal:${candidate.proposalId}`,
    runId: `proposal:${candidate.proposalId}`,
    type: 'proposal-create',
    time: options.time ?? new Date().toISOString(),
    source: { format: 'selfharness' },
    data: {
      proposalId: candidate.proposalId,
      baseVersionId: options.baseVersionId,
      ...(options.jobId !== undefined ? { jobId: options.jobId } : {}),
      ...(options.iteration !== undefined ? { iteration: options.iteration } : {}),
      proposer: options.proposer,
      clusterId: candidate.clusterId,
      mechanism: candidate.mechanism,
      surface: candidate.surface,
      patch: candidate.patch.map((operation) => ({ ...operation })),
      expectedEffect: candidate.expectedEffect,
      preserve: candidate.preserve,
      risk: candidate.risk,
      ...(candidate.rationale ? { rationale: candidate.rationale } : {}),
    },
  };
}

/** Appends a `proposal-create` event per candidate; an edit recorded before is a duplicate and adds nothing. */
export async function recordProposals(
  log: EventLog,
  candidates: readonly Candidate[],
  options: RecordOptions,
): Promise<AppendResult> {
  return log.appendEvents(candidates.map((candidate) => proposalEvent(candidate, options)));
}

/**
 * Keeps the proposals that failed the checks in `ingest_rejects` (format `proposal`), with the reason and the edit as
 * it came, like any other record that could not be loaded; the same rejection kept twice is stored once.
 */
export async function recordRejectedProposals(
  log: EventLog,
  rejected: readonly RejectedCandidate[],
  options: { baseVersionId: string; proposer: string },
): Promise<number> {
  if (rejected.length === 0) return 0;
  const records: RejectedRecord[] = rejected.map((entry, index) => ({
    format: 'proposal',
    file: options.proposer,
    position: `base ${options.baseVersionId}, candidate ${index + 1}`,
    reason: entry.reason,
    raw: entry.raw,
  }));
  return (await log.appendEvents([], records)).rejected;
}

export type ProposalStatus = 'proposed' | 'screened-in' | 'screened-out' | 'accepted' | 'rejected' | 'merged';

export interface ProposalDecision {
  readonly stage: 'replay' | 'gate' | 'merge';
  readonly decision: 'accepted' | 'rejected' | 'screened-out';
  readonly gate?: string;
  readonly reasons: readonly string[];
  readonly metrics: Readonly<Record<string, unknown>>;
  readonly time?: string;
}

/** A recorded proposal with where it stands. */
export interface ProposalRecord {
  readonly proposalId: string;
  readonly baseVersionId: string;
  readonly jobId?: string;
  readonly iteration?: number;
  readonly proposer: string;
  readonly clusterId?: string;
  readonly mechanism?: string;
  readonly surface: string;
  readonly patch: readonly Record<string, unknown>[];
  readonly expectedEffect: string;
  readonly preserve: string;
  readonly risk: 'low' | 'medium' | 'high';
  readonly rationale?: string;
  readonly createdAt?: string;
  /** `proposed` until a decision; a replay that lets it through makes it `screened-in`, a gate `accepted`. */
  readonly status: ProposalStatus;
  /** The latest decision, when there is one. */
  readonly decision?: ProposalDecision;
  /** The harness the edit yields, when its base version is registered. */
  readonly resultVersionId?: string;
}

const LIST_PROPOSALS = `
WITH decisions AS (
  SELECT data->>'proposalId' AS proposal_id, CAST(data AS VARCHAR) AS decision,
         coalesce(time, recorded_at) AS decided_at
  FROM events
  WHERE type = 'validation-decide'
  QUALIFY row_number() OVER (PARTITION BY data->>'proposalId' ORDER BY seq DESC) = 1
)
SELECT CAST(proposals.data AS VARCHAR) AS proposal, coalesce(proposals.time, proposals.recorded_at) AS created_at,
       decisions.decision, decisions.decided_at
FROM events proposals
LEFT JOIN decisions ON decisions.proposal_id = (proposals.data->>'proposalId')
WHERE proposals.type = 'proposal-create'
ORDER BY proposals.seq`;

interface ProposalRow extends Record<string, unknown> {
  proposal: string;
  created_at: unknown;
  decision: string | null;
  decided_at: unknown;
}

/** Every recorded proposal, oldest first, with its latest decision. */
export async function listProposals(log: EventLog): Promise<ProposalRecord[]> {
  const rows = await log.query<ProposalRow>(LIST_PROPOSALS);
  if (rows.length === 0) return [];
  const specs = new Map((await listVersions(log)).map((version) => [version.versionId, version.spec]));
  return rows.map((row) => {
    const data = JSON.parse(row.proposal) as ProposalCreated['data'];
    const decision = row.decision ? (JSON.parse(row.decision) as ProposalDecision) : undefined;
    const base = specs.get(data.baseVersionId);
    const applied = base ? applySpecPatch(base, data.patch) : undefined;
    return {
      proposalId: data.proposalId,
      baseVersionId: data.baseVersionId,
      ...(data.jobId !== undefined ? { jobId: data.jobId } : {}),
      ...(data.iteration !== undefined ? { iteration: data.iteration } : {}),
      proposer: data.proposer,
      ...(data.clusterId !== undefined ? { clusterId: data.clusterId } : {}),
      ...(data.mechanism !== undefined ? { mechanism: data.mechanism } : {}),
      surface: data.surface,
      patch: data.patch as Record<string, unknown>[],
      expectedEffect: data.expectedEffect,
      preserve: data.preserve,
      risk: data.risk,
      ...(data.rationale !== undefined ? { rationale: data.rationale } : {}),
      ...(row.created_at instanceof Date ? { createdAt: row.created_at.toISOString() } : {}),
      status: statusOf(decision),
      ...(decision
        ? {
            decision: {
              stage: decision.stage,
              decision: decision.decision,
              ...(decision.gate !== undefined ? { gate: decision.gate } : {}),
              reasons: decision.reasons ?? [],
              metrics: decision.metrics ?? {},
              ...(row.decided_at instanceof Date ? { time: row.decided_at.toISOString() } : {}),
            },
          }
        : {}),
      ...(applied?.ok ? { resultVersionId: computeVersionId(applied.spec) } : {}),
    };
  });
}

function statusOf(decision: ProposalDecision | undefined): ProposalStatus {
  if (!decision) return 'proposed';
  if (decision.decision !== 'accepted') return decision.decision;
  if (decision.stage === 'replay') return 'screened-in';
  return decision.stage === 'merge' ? 'merged' : 'accepted';
}
