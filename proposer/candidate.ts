import { createHash } from 'node:crypto';
import { z } from 'zod';
import { describeSchemaError } from '../core/index.js';
import {
  applySpecPatch,
  canonicalJson,
  computeVersionId,
  type EditableSurface,
  formatPointer,
  type HarnessSpec,
  isDeepEqual,
  type PatchOperation,
  parsePatch,
  parsePointer,
  valueAt,
} from '../harness/index.js';
import type { ProposalBrief } from './brief.js';

/**
 * A candidate harness edit and the checks every candidate passes, whoever wrote it (the rule-based proposer, a model):
 * the patch is small, stays on one declared surface, applies to the base harness and yields a valid spec that differs
 * from it, and is no repeat of an edit that was rejected before. Pure functions over values.
 */

export const Risk = z.enum(['low', 'medium', 'high']);
export type Risk = z.infer<typeof Risk>;

/** Operations a candidate may hold: an edit that needs more is not minimal, and is better split or left out. */
export const MAX_PATCH_OPERATIONS = 4;
/** Characters a candidate may add or change (for a text, only the part that differs from the text it replaces). */
export const MAX_CHANGED_CHARACTERS = 1200;

/** An edit as a proposer writes it, before the checks. */
export const CandidateDraft = z.object({
  clusterId: z.string().min(1).max(64),
  /** Defaults to the cluster's most frequent mechanism. */
  mechanism: z.string().min(1).max(80).optional(),
  surface: z.string().min(1).max(200),
  patch: z.array(z.unknown()).min(1),
  expectedEffect: z.string().min(1).max(1000),
  preserve: z.string().min(1).max(1000),
  risk: Risk,
  rationale: z.string().max(2000).default(''),
});
export type CandidateDraft = z.input<typeof CandidateDraft>;

/** An edit that passed every check, ready to record and validate. */
export interface Candidate {
  readonly clusterId: string;
  readonly mechanism: string;
  /** The one editable surface the patch writes, concrete (`/instructions/recovery`, `/middleware`). */
  readonly surface: string;
  readonly patch: readonly PatchOperation[];
  readonly expectedEffect: string;
  readonly preserve: string;
  readonly risk: Risk;
  readonly rationale: string;
  /** Derived from the base version and the canonical patch: the same edit always has the same id. */
  readonly proposalId: string;
  /** The version id of the harness the edit yields. */
  readonly resultVersionId: string;
}

/** Why a proposed edit was not kept, with the edit as it came (JSON text), so nothing is lost. */
export interface RejectedCandidate {
  readonly reason: string;
  readonly raw: string;
}

export type CandidateCheck = { ok: true; candidate: Candidate } | { ok: false; rejected: RejectedCandidate };

/** A proposal's id: the first 12 hex characters of the sha256 of the base version id and the canonical patch. */
export function proposalIdOf(baseVersionId: string, patch: readonly unknown[]): string {
  return createHash('sha256')
    .update(`${baseVersionId}\n${canonicalJson(patch)}`)
    .digest('hex')
    .slice(0, 12);
}

/**
 * The concrete surface a JSON Pointer lies on: the declared surface with its `*` filled in from the pointer
 * (`/instructions/recovery`, `/tools/shell/description`), or undefined when it lies on none.
 */
export function concreteSurface(pointer: string, surfaces: readonly EditableSurface[]): string | undefined {
  let tokens: string[];
  try {
    tokens = parsePointer(pointer);
  } catch {
    return undefined;
  }
  for (const surface of surfaces) {
    const pattern = parsePointer(surface.path);
    if (tokens.length < pattern.length) continue;
    if (pattern.every((segment, index) => segment === '*' || segment === tokens[index]))
      return formatPointer(pattern.map((segment, index) => (segment === '*' ? (tokens[index] ?? '*') : segment)));
  }
  return undefined;
}

/** Whether a declared surface names the concrete one (`/instructions/*` covers `/instructions/recovery`). */
function coversSurface(declared: string, concrete: string): boolean {
  let declaredTokens: string[];
  try {
    declaredTokens = parsePointer(declared);
  } catch {
    return false;
  }
  const concreteTokens = parsePointer(concrete);
  const shared = Math.min(declaredTokens.length, concreteTokens.length);
  for (let index = 0; index < shared; index += 1) {
    const token = declaredTokens[index];
    if (token !== '*' && token !== concreteTokens[index]) return false;
  }
  return true;
}

/**
 * How much an edit adds or changes, in characters: for a text replaced by another, the part between their common
 * start and end; for any other value, its JSON text; removals, moves and copies add nothing new.
 */
export function changedCharacters(spec: HarnessSpec, operations: readonly PatchOperation[]): number {
  let total = 0;
  for (const operation of operations) {
    if (operation.op !== 'add' && operation.op !== 'replace') continue;
    let before: unknown;
    try {
      before = valueAt(spec, operation.path);
    } catch {
      before = undefined;
    }
    if (typeof before === 'string' && typeof operation.value === 'string') {
      total += textChange(before, operation.value);
    } else {
      total += canonicalJson(operation.value ?? null).length;
    }
  }
  return total;
}

function textChange(before: string, after: string): number {
  let prefix = 0;
  const shorter = Math.min(before.length, after.length);
  while (prefix < shorter && before[prefix] === after[prefix]) prefix += 1;
  let suffix = 0;
  while (suffix < shorter - prefix && before[before.length - 1 - suffix] === after[after.length - 1 - suffix])
    suffix += 1;
  return Math.max(before.length, after.length) - prefix - suffix;
}

/**
 * Checks one proposed edit against the brief. `accepted` are the candidates already kept from the same answer, so a
 * second copy of one edit is caught. Returns the candidate with its ids, or the reason it was rejected.
 */
export function checkCandidate(
  brief: ProposalBrief,
  draft: unknown,
  accepted: readonly Candidate[] = [],
): CandidateCheck {
  const raw = safeJson(draft);
  const reject = (reason: string): CandidateCheck => ({ ok: false, rejected: { reason, raw } });
  const parsed = CandidateDraft.safeParse(draft);
  if (!parsed.success) return reject(`not a candidate: ${describeSchemaError(parsed.error)}`);
  const value = parsed.data;

  const cluster = brief.clusters.find((entry) => entry.clusterId === value.clusterId);
  if (!cluster)
    return reject(
      `names cluster ${value.clusterId}, which is not in the brief (clusters: ${brief.clusters.map((entry) => entry.clusterId).join(', ') || 'none'})`,
    );

  const patch = parsePatch(value.patch);
  if ('error' in patch) return reject(`malformed patch: ${patch.error}`);
  const operations = patch.operations;
  if (operations.length > MAX_PATCH_OPERATIONS)
    return reject(`the patch has ${operations.length} operations; a minimal edit has at most ${MAX_PATCH_OPERATIONS}`);

  const applied = applySpecPatch(brief.spec, operations, brief.surfaces);
  if (!applied.ok) return reject(`the patch does not apply: ${applied.reasons.join('; ')}`);

  const written = operations.flatMap((operation) =>
    operation.op === 'test' ? [] : operation.op === 'move' ? [operation.from, operation.path] : [operation.path],
  );
  const concrete = [...new Set(written.map((path) => concreteSurface(path, brief.surfaces) ?? path))];
  if (concrete.length !== 1)
    return reject(
      `a candidate edits one surface; this patch edits ${concrete.join(' and ')}: propose one candidate per surface`,
    );
  const surface = concrete[0]!;
  if (!coversSurface(value.surface, surface))
    return reject(`declares surface ${value.surface}, but its patch writes ${written.join(', ')} (surface ${surface})`);

  const changed = changedCharacters(brief.spec, operations);
  if (changed > MAX_CHANGED_CHARACTERS)
    return reject(
      `the patch adds or changes ${changed} characters; a minimal edit changes at most ${MAX_CHANGED_CHARACTERS}`,
    );

  if (isDeepEqual(applied.spec, brief.spec)) return reject('a no-op: the patched harness equals the base harness');

  const proposalId = proposalIdOf(brief.baseVersionId, operations);
  const resultVersionId = computeVersionId(applied.spec);
  const earlier = brief.earlierProposals.find(
    (proposal) =>
      isRejectedStatus(proposal.status) &&
      (proposal.proposalId === proposalId || proposal.resultVersionId === resultVersionId),
  );
  if (earlier)
    return reject(
      `repeats proposal ${earlier.proposalId} (${earlier.proposalId === proposalId ? 'the same patch on the same base' : 'it yields the same harness'}), which was ${earlier.status}${earlier.reasons.length > 0 ? `: ${earlier.reasons.join('; ')}` : ''}`,
    );
  const twin = accepted.find(
    (candidate) => candidate.proposalId === proposalId || candidate.resultVersionId === resultVersionId,
  );
  if (twin) return reject(`the same edit as candidate ${twin.proposalId} of this answer`);

  return {
    ok: true,
    candidate: {
      clusterId: value.clusterId,
      mechanism: value.mechanism ?? cluster.mechanisms[0]?.mechanism ?? 'unknown',
      surface,
      patch: operations,
      expectedEffect: value.expectedEffect,
      preserve: value.preserve,
      risk: value.risk,
      rationale: value.rationale,
      proposalId,
      resultVersionId,
    },
  };
}

/** Statuses that mark an edit as tried and refused: proposing it again on the same base is pointless. */
export function isRejectedStatus(status: string): boolean {
  return status === 'rejected' || status === 'screened-out';
}

/** Checks every draft in order; the valid ones keep their order, the rejected ones come with their reasons. */
export function checkCandidates(
  brief: ProposalBrief,
  drafts: readonly unknown[],
): { candidates: Candidate[]; rejected: RejectedCandidate[] } {
  const candidates: Candidate[] = [];
  const rejected: RejectedCandidate[] = [];
  for (const draft of drafts) {
    const check = checkCandidate(brief, draft, candidates);
    if (check.ok) candidates.push(check.candidate);
    else rejected.push(check.rejected);
  }
  return { candidates, rejected };
}

/**
 * Picks up to `count` candidates, in their order of preference, so that the picks spread over clusters and surfaces:
 * first those whose cluster and surface are both new, then those with a new cluster, then those with a new surface.
 * Two candidates for the same cluster on the same surface are never both picked; fewer than `count` is a fine answer.
 */
export function selectDiverse(candidates: readonly Candidate[], count: number): Candidate[] {
  const chosen: Candidate[] = [];
  const clusters = new Set<string>();
  const surfaces = new Set<string>();
  const pairs = new Set<string>();
  const passes: ((candidate: Candidate) => boolean)[] = [
    (candidate) => !clusters.has(candidate.clusterId) && !surfaces.has(candidate.surface),
    (candidate) => !clusters.has(candidate.clusterId),
    (candidate) => !surfaces.has(candidate.surface),
  ];
  for (const accept of passes) {
    for (const candidate of candidates) {
      if (chosen.length >= count) return chosen;
      const pair = `${candidate.clusterId}\u0000${candidate.surface}`;
      if (chosen.includes(candidate) || pairs.has(pair) || !accept(candidate)) continue;
      chosen.push(candidate);
      clusters.add(candidate.clusterId);
      surfaces.add(candidate.surface);
      pairs.add(pair);
    }
  }
  return chosen;
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
