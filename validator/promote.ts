import { type EventLog, type HarnessPromoted, type PatchOperation, UserError } from '../core/index.js';
import {
  applySpecPatch,
  computeVersionId,
  defaultVersionId,
  type HarnessSpec,
  type HarnessVersion,
  parsePointer,
  registerVersion,
  resolveVersion,
} from '../harness/index.js';
import { type DecisionInput, listValidations, recordDecision } from './decisions.js';
import { listProposals } from './proposals.js';

/**
 * Promotion: accepted edits that touch disjoint parts of the spec are merged into the next harness version (where
 * two clash, the better-scoring one is kept and the other reported), the version is registered with its parent and a
 * changelog, and a `harness-promote` event in the stream `harness-head` makes it the current harness. A rollback is
 * the same event with reason `rollback`. The current harness is the version of the latest such event.
 */

/** The stream that holds the promotion history. */
export const HEAD_STREAM = 'harness-head';

/** An edit the gate accepted, with what the changelog and conflict resolution need. */
export interface AcceptedEdit {
  readonly proposalId: string;
  readonly patch: readonly PatchOperation[];
  /** Higher is better: by default Δheld-in + Δheld-out in points. */
  readonly score: number;
  readonly clusterId?: string;
  readonly mechanism?: string;
  readonly surface?: string;
  readonly deltaHeldIn?: number;
  readonly deltaHeldOut?: number;
}

export interface MergeConflict {
  readonly proposalId: string;
  /** The merged edit it clashed with, when the clash is with one edit. */
  readonly keptProposalId?: string;
  readonly reason: string;
}

export interface MergePlan {
  readonly spec: HarnessSpec;
  readonly merged: readonly AcceptedEdit[];
  readonly conflicts: readonly MergeConflict[];
}

function childOf(value: unknown, token: string): unknown {
  if (Array.isArray(value)) return /^\d+$/.test(token) ? value[Number(token)] : undefined;
  if (value !== null && typeof value === 'object') return (value as Record<string, unknown>)[token];
  return undefined;
}

/**
 * The parts of `spec` a patch writes, as JSON Pointer token lists. An operation that shifts array positions (an add
 * at an index, a remove, a move) touches the whole array; an append (`/-`) touches only the new element, written `-` (two
 * appends to one list are compatible); anything else touches its own path. `test` touches nothing.
 */
export function touchedPaths(spec: unknown, patch: AcceptedEdit['patch']): string[][] {
  const touched: string[][] = [];
  const touch = (pointer: string, op: string) => {
    const tokens = parsePointer(pointer);
    const parentTokens = tokens.slice(0, -1);
    const parent = parentTokens.reduce<unknown>((value, token) => childOf(value, token), spec);
    const last = tokens.at(-1);
    if (Array.isArray(parent) && last !== undefined) {
      if (last === '-' && op === 'add') {
        touched.push([...parentTokens, '-']);
        return;
      }
      if (op !== 'replace') {
        touched.push(parentTokens);
        return;
      }
    }
    touched.push(tokens);
  };
  for (const operation of patch) {
    if (operation.op === 'test') continue;
    touch(operation.path, operation.op);
    if (operation.op === 'move' && operation.from !== undefined) touch(operation.from, 'remove');
  }
  return touched;
}

/** Token-wise prefix; two appends (`-`) to one list are different elements, so they never match each other. */
const isPrefix = (short: readonly string[], long: readonly string[]) =>
  short.length <= long.length && short.every((token, index) => token === long[index] && token !== '-');

/** A path both patches touch (one is a prefix of the other), written as a JSON Pointer, or undefined. */
function sharedPath(first: readonly string[][], second: readonly string[][]): string | undefined {
  for (const a of first)
    for (const b of second)
      if (isPrefix(a, b) || isPrefix(b, a)) {
        const shorter = a.length <= b.length ? a : b;
        return shorter.length === 0 ? '/' : `/${shorter.join('/')}`;
      }
  return undefined;
}

/**
 * Merges accepted edits into one spec, best score first (ties by proposal id): an edit touching a part of the spec a
 * kept edit touches, or that no longer applies on top of the kept ones, is left out with the reason.
 */
export function planMerge(base: HarnessSpec, edits: readonly AcceptedEdit[]): MergePlan {
  const ordered = [...edits].sort(
    (first, second) => second.score - first.score || first.proposalId.localeCompare(second.proposalId),
  );
  let spec = base;
  const merged: { edit: AcceptedEdit; paths: string[][] }[] = [];
  const conflicts: MergeConflict[] = [];
  for (const edit of ordered) {
    const paths = touchedPaths(base, edit.patch);
    const clash = merged
      .map((kept) => ({ kept, path: sharedPath(kept.paths, paths) }))
      .find((candidate) => candidate.path !== undefined);
    if (clash) {
      conflicts.push({
        proposalId: edit.proposalId,
        keptProposalId: clash.kept.edit.proposalId,
        reason: `Conflicts with ${clash.kept.edit.proposalId} on ${clash.path}; that edit scored higher (${formatScore(clash.kept.edit.score)} vs ${formatScore(edit.score)}) and was kept.`,
      });
      continue;
    }
    const applied = applySpecPatch(spec, edit.patch);
    if (!applied.ok) {
      conflicts.push({
        proposalId: edit.proposalId,
        ...(merged.length > 0 ? { keptProposalId: merged.at(-1)!.edit.proposalId } : {}),
        reason: `Does not apply on top of the edits kept (${merged.map((kept) => kept.edit.proposalId).join(', ') || 'none'}): ${applied.reasons.join('; ')}.`,
      });
      continue;
    }
    spec = applied.spec;
    merged.push({ edit, paths });
  }
  return { spec, merged: merged.map((kept) => kept.edit), conflicts };
}

const formatScore = (score: number) => `${score >= 0 ? '+' : '−'}${Math.abs(score).toFixed(1)}`;
const formatDelta = (value: number | undefined) => (value === undefined ? 'n/a' : `${formatScore(value)} points`);

/** The changelog of a merged version: which proposals, which clusters, the Δs, and what was left out. */
export function changelogOf(plan: MergePlan, baseVersionId: string): string {
  const lines = [`From ${baseVersionId}: ${plan.merged.length} edit${plan.merged.length === 1 ? '' : 's'} merged.`];
  for (const edit of plan.merged) {
    const target = [
      edit.clusterId !== undefined ? `cluster ${edit.clusterId}` : undefined,
      edit.mechanism,
      edit.surface ?? [...new Set(edit.patch.map((operation) => operation.path))].join(', '),
    ].filter((part) => part !== undefined);
    lines.push(
      `- ${edit.proposalId} (${target.join('; ')}): Δheld-in ${formatDelta(edit.deltaHeldIn)}, Δheld-out ${formatDelta(edit.deltaHeldOut)}`,
    );
  }
  if (plan.conflicts.length > 0) {
    lines.push('Left out:');
    for (const conflict of plan.conflicts) lines.push(`- ${conflict.proposalId}: ${conflict.reason}`);
  }
  return lines.join('\n');
}

/**
 * Finds a version by reference like `resolveVersion`, but the default harness's id works too before the default is
 * registered (it is registered then, unless `readOnly`).
 */
export async function resolveHarness(
  log: EventLog,
  reference: string,
  options: { readonly readOnly?: boolean } = {},
): Promise<HarnessVersion> {
  return resolveVersion(log, reference === defaultVersionId() ? 'default' : reference, options);
}

/** A promotion or rollback as read back from the log. */
export interface PromotionRecord {
  readonly seq: number;
  readonly time?: string;
  readonly versionId: string;
  readonly previousVersionId?: string;
  readonly reason: 'promotion' | 'rollback';
  readonly proposalIds: readonly string[];
  readonly changelog: string;
}

const LIST_PROMOTIONS = `
SELECT seq, coalesce(time, recorded_at) AS time, CAST(data AS VARCHAR) AS data
FROM events WHERE type = 'harness-promote' ORDER BY seq`;

/** The promotion history, oldest first. */
export async function listPromotions(log: EventLog): Promise<PromotionRecord[]> {
  const rows = await log.query<{ seq: bigint; time: unknown; data: string }>(LIST_PROMOTIONS);
  return rows.map((row) => {
    const data = JSON.parse(row.data) as HarnessPromoted['data'];
    return {
      seq: Number(row.seq),
      ...(row.time instanceof Date ? { time: row.time.toISOString() } : {}),
      versionId: data.versionId,
      ...(data.previousVersionId !== undefined ? { previousVersionId: data.previousVersionId } : {}),
      reason: data.reason,
      proposalIds: data.proposalIds,
      changelog: data.changelog,
    };
  });
}

/** The current harness: the version of the latest promotion or rollback; the built-in default when there is none. */
export async function currentHarness(
  log: EventLog,
): Promise<{ readonly version: HarnessVersion; readonly promotion?: PromotionRecord }> {
  const promotion = (await listPromotions(log)).at(-1);
  if (!promotion) return { version: await resolveVersion(log, 'default', { readOnly: true }) };
  return { version: await resolveHarness(log, promotion.versionId, { readOnly: true }), promotion };
}

/**
 * The event that moves the head. Its id holds the number of head moves before it and both versions, so re-running the
 * same move after it was stored adds nothing.
 */
export function promotionEvent(
  input: {
    readonly generation: number;
    readonly versionId: string;
    readonly previousVersionId?: string;
    readonly reason: 'promotion' | 'rollback';
    readonly proposalIds: readonly string[];
    readonly changelog: string;
  },
  time: string,
): HarnessPromoted {
  return {
    id: `harness-promote:${input.generation}:${input.previousVersionId ?? 'none'}:${input.versionId}`,
    runId: HEAD_STREAM,
    type: 'harness-promote',
    time,
    source: { format: 'selfharness' },
    data: {
      versionId: input.versionId,
      ...(input.previousVersionId !== undefined ? { previousVersionId: input.previousVersionId } : {}),
      reason: input.reason,
      proposalIds: [...input.proposalIds],
      changelog: input.changelog,
    },
  };
}

async function moveHead(
  log: EventLog,
  input: Omit<Parameters<typeof promotionEvent>[0], 'generation' | 'previousVersionId'>,
  time: string,
): Promise<{ event?: HarnessPromoted; appended: boolean }> {
  const history = await listPromotions(log);
  const previous = history.at(-1)?.versionId ?? defaultVersionId();
  if (previous === input.versionId) return { appended: false };
  const event = promotionEvent({ ...input, generation: history.length, previousVersionId: previous }, time);
  const result = await log.appendEvents([event]);
  return { event, appended: result.appended > 0 };
}

export interface PromotionResult {
  readonly plan: MergePlan;
  /** The merged version; absent when no edit could be merged. */
  readonly version?: HarnessVersion;
  readonly changelog: string;
  readonly event?: HarnessPromoted;
  /** False when the head already was this version (a re-run) or nothing was merged. */
  readonly appended: boolean;
}

/**
 * Merges accepted edits onto their base, registers the result (parent: the base) and makes it the current harness.
 * The base must be the current harness: edits validated against an older one were never tried with what came since.
 * Each edit gets a `validation-decide` (stage `merge`): accepted when merged, rejected with the conflict otherwise.
 */
export async function promoteAccepted(
  log: EventLog,
  input: { readonly baseVersionId: string; readonly edits: readonly AcceptedEdit[]; readonly time?: string },
): Promise<PromotionResult> {
  const time = input.time ?? new Date().toISOString();
  const base = await resolveHarness(log, input.baseVersionId);
  const head = await currentHarness(log);
  const plan = planMerge(base.spec, input.edits);
  const changelog = changelogOf(plan, base.versionId);
  if (head.version.versionId !== base.versionId) {
    const mergedVersion = plan.merged.length > 0 ? await findMergedVersion(log, plan.spec) : undefined;
    if (mergedVersion === undefined || mergedVersion !== head.version.versionId)
      throw new UserError(
        `The edits were validated against harness ${base.versionId}, but the current harness is ${head.version.versionId}: validate them against the current one, or roll back with \`selfharness rollback ${base.versionId}\`.`,
      );
  }
  if (plan.merged.length === 0) {
    await recordMergeDecisions(log, plan, undefined, time);
    return { plan, changelog, appended: false };
  }
  const { version } = await registerVersion(log, plan.spec, {
    parentId: base.versionId,
    description: changelog,
  });
  await recordMergeDecisions(log, plan, version.versionId, time);
  const moved = await moveHead(
    log,
    {
      versionId: version.versionId,
      reason: 'promotion',
      proposalIds: plan.merged.map((edit) => edit.proposalId),
      changelog,
    },
    time,
  );
  return { plan, version, changelog, ...moved };
}

async function findMergedVersion(log: EventLog, spec: HarnessSpec): Promise<string | undefined> {
  const versionId = computeVersionId(spec);
  try {
    return (await resolveVersion(log, versionId, { readOnly: true })).versionId;
  } catch {
    return undefined;
  }
}

async function recordMergeDecisions(
  log: EventLog,
  plan: MergePlan,
  versionId: string | undefined,
  time: string,
): Promise<void> {
  const decisions: DecisionInput[] = [
    ...plan.merged.map(
      (edit): DecisionInput => ({
        proposalId: edit.proposalId,
        stage: 'merge',
        decision: 'accepted',
        reasons: [`Merged into harness ${versionId}.`],
        metrics: { versionId: versionId ?? null, score: edit.score },
      }),
    ),
    ...plan.conflicts.map(
      (conflict): DecisionInput => ({
        proposalId: conflict.proposalId,
        stage: 'merge',
        decision: 'rejected',
        reasons: [conflict.reason],
        metrics: { versionId: versionId ?? null, keptProposalId: conflict.keptProposalId ?? null },
      }),
    ),
  ];
  for (const decision of decisions) await recordDecision(log, decision, time);
}

/**
 * Makes an earlier harness current again. Only a version that was current before (or the built-in default) can be
 * rolled back to; rolling back to the current harness changes nothing.
 */
export async function rollbackHarness(
  log: EventLog,
  reference: string,
  options: { readonly reason?: string; readonly time?: string } = {},
): Promise<{ version: HarnessVersion; previousVersionId: string; event?: HarnessPromoted; appended: boolean }> {
  const target = await resolveHarness(log, reference);
  const history = await listPromotions(log);
  const previousVersionId = history.at(-1)?.versionId ?? defaultVersionId();
  const earlier = new Set([defaultVersionId(), ...history.map((promotion) => promotion.versionId)]);
  if (!earlier.has(target.versionId))
    throw new UserError(
      `Harness version ${target.versionId} was never the current harness, so there is nothing to roll back to: choose one of ${[...earlier].join(', ')} (see \`selfharness harness-head --history\`).`,
    );
  const moved = await moveHead(
    log,
    {
      versionId: target.versionId,
      reason: 'rollback',
      proposalIds: [],
      changelog: `Rolled back from ${previousVersionId} to ${target.versionId}${options.reason ? `: ${options.reason}` : '.'}`,
    },
    options.time ?? new Date().toISOString(),
  );
  return { version: target, previousVersionId, ...moved };
}

/**
 * The edits the gate accepted for proposals on `baseVersionId` and not yet merged or left out: each proposal's latest
 * gate decision is `accepted`, and no merge decision came after it. The score is Δheld-in + Δheld-out.
 */
export async function acceptedEdits(log: EventLog, baseVersionId: string): Promise<AcceptedEdit[]> {
  const proposals = (await listProposals(log)).filter((proposal) => proposal.baseVersionId === baseVersionId);
  const decisions = await listValidations(log);
  const edits: AcceptedEdit[] = [];
  for (const proposal of proposals) {
    const own = decisions.filter((decision) => decision.proposalId === proposal.proposalId);
    const gate = own.filter((decision) => decision.stage === 'gate').at(-1);
    if (gate?.decision !== 'accepted') continue;
    if (own.some((decision) => decision.stage === 'merge' && decision.seq > gate.seq)) continue;
    const deltaOf = (split: 'heldIn' | 'heldOut') => {
      const metrics = gate.metrics[split] as { deltaPoints?: unknown } | undefined;
      return typeof metrics?.deltaPoints === 'number' ? metrics.deltaPoints : undefined;
    };
    const deltaHeldIn = deltaOf('heldIn');
    const deltaHeldOut = deltaOf('heldOut');
    edits.push({
      proposalId: proposal.proposalId,
      patch: proposal.patch,
      score: (deltaHeldIn ?? 0) + (deltaHeldOut ?? 0),
      surface: proposal.surface,
      ...(proposal.clusterId !== undefined ? { clusterId: proposal.clusterId } : {}),
      ...(proposal.mechanism !== undefined ? { mechanism: proposal.mechanism } : {}),
      ...(deltaHeldIn !== undefined ? { deltaHeldIn } : {}),
      ...(deltaHeldOut !== undefined ? { deltaHeldOut } : {}),
    });
  }
  return edits;
}
