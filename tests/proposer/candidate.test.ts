import { describe, expect, it } from 'vitest';
import { defaultHarnessSpec, defaultVersionId } from '../../harness/index.js';
import {
  type Candidate,
  changedCharacters,
  checkCandidate,
  checkCandidates,
  concreteSurface,
  MAX_CHANGED_CHARACTERS,
  proposalIdOf,
  selectDiverse,
} from '../../proposer/index.js';
import { briefOf, cardsByMechanism } from './cards.js';

const cards = cardsByMechanism();
const brief = briefOf([cards['tool-call-loop']!, cards['missing-dependency']!]);

function draft(patch: unknown[], overrides: Record<string, unknown> = {}) {
  return {
    clusterId: 'c-tool-call-loop',
    mechanism: 'tool-call-loop',
    surface: '/middleware',
    patch,
    expectedEffect: 'loops are broken',
    preserve: 'passing runs still pass',
    risk: 'low',
    rationale: 'the evidence shows loops',
    ...overrides,
  };
}

const addLoopBreaker = [{ op: 'add', path: '/middleware/-', value: { name: 'loop-breaker' } }];

function reasonOf(value: unknown, accepted: Candidate[] = []): string {
  const check = checkCandidate(brief, value, accepted);
  return check.ok ? 'accepted' : check.rejected.reason;
}

describe('checkCandidate', () => {
  it('accepts a small in-surface edit and derives its ids from the base and the canonical patch', () => {
    const check = checkCandidate(brief, draft(addLoopBreaker));
    expect(check.ok).toBe(true);
    if (!check.ok) return;
    expect(check.candidate.proposalId).toBe(proposalIdOf(defaultVersionId(), addLoopBreaker));
    expect(check.candidate.proposalId).toMatch(/^[0-9a-f]{12}$/);
    expect(check.candidate.resultVersionId).not.toBe(defaultVersionId());
    // Key order does not change the id.
    const reordered = [{ value: { name: 'loop-breaker' }, path: '/middleware/-', op: 'add' }];
    expect(proposalIdOf(defaultVersionId(), reordered)).toBe(check.candidate.proposalId);
  });

  it('fills the mechanism from the cluster when the draft leaves it out', () => {
    const check = checkCandidate(brief, draft(addLoopBreaker, { mechanism: undefined }));
    expect(check.ok && check.candidate.mechanism).toBe('tool-call-loop');
  });

  it('rejects an out-of-surface patch, naming the path', () => {
    const reason = reasonOf(
      draft([{ op: 'replace', path: '/tools/shell/enabled', value: false }], { surface: '/tools/shell' }),
    );
    expect(reason).toContain('/tools/shell/enabled');
    expect(reason).toContain('not an editable surface');
  });

  it('rejects what is not a candidate, a malformed patch, and an unknown cluster', () => {
    expect(reasonOf({ clusterId: 'c-tool-call-loop' })).toContain('not a candidate');
    expect(reasonOf(draft([{ op: 'frobnicate', path: '/rules' }]))).toContain(
      'malformed patch: operation 0: op must be',
    );
    expect(reasonOf(draft(addLoopBreaker, { clusterId: 'nope' }))).toContain(
      'names cluster nope, which is not in the brief',
    );
    expect(reasonOf(draft(addLoopBreaker, { risk: 'none' }))).toContain('risk');
  });

  it('rejects a patch that yields an invalid harness, with the bad field', () => {
    const reason = reasonOf(
      draft([{ op: 'add', path: '/middleware/-', value: { name: 'loop-breaker', maxRepeats: 1 } }]),
    );
    expect(reason).toContain('/middleware/0/maxRepeats');
  });

  it('caps the size of an edit: operations and changed characters', () => {
    const many = Array.from({ length: 5 }, (_, index) => ({
      op: 'replace',
      path: '/budgets/maxTurns',
      value: 60 + index,
    }));
    expect(reasonOf(draft(many, { surface: '/budgets/maxTurns' }))).toContain('at most 4');
    const long = 'Check your work. '.repeat(100);
    expect(
      reasonOf(
        draft([{ op: 'replace', path: '/instructions/recovery', value: long }], { surface: '/instructions/recovery' }),
      ),
    ).toContain(`at most ${MAX_CHANGED_CHARACTERS}`);
  });

  it('counts only the changed part of a replaced text', () => {
    const system = defaultHarnessSpec.instructions.system;
    expect(
      changedCharacters(defaultHarnessSpec, [
        { op: 'replace', path: '/instructions/system', value: `${system} Be brief.` },
      ]),
    ).toBe(' Be brief.'.length);
  });

  it('rejects a no-op and a patch spanning two surfaces', () => {
    expect(
      reasonOf(draft([{ op: 'replace', path: '/budgets/maxTurns', value: 50 }], { surface: '/budgets/maxTurns' })),
    ).toContain('no-op');
    const reason = reasonOf(
      draft([...addLoopBreaker, { op: 'replace', path: '/instructions/recovery', value: 'Try something else.' }]),
    );
    expect(reason).toContain('edits /middleware and /instructions/recovery');
  });

  it('rejects a declared surface the patch does not write, and accepts the surface pattern', () => {
    expect(reasonOf(draft(addLoopBreaker, { surface: '/rules' }))).toContain('declares surface /rules');
    const recovery = [{ op: 'replace', path: '/instructions/recovery', value: 'Read errors.' }];
    const check = checkCandidate(brief, draft(recovery, { surface: '/instructions/*' }));
    expect(check.ok && check.candidate.surface).toBe('/instructions/recovery');
  });

  it('rejects a repeat of an edit rejected on the same base, and an edit yielding a rejected harness', () => {
    const first = checkCandidate(brief, draft(addLoopBreaker));
    if (!first.ok) throw new Error(first.rejected.reason);
    const earlier = {
      proposalId: first.candidate.proposalId,
      baseVersionId: defaultVersionId(),
      surface: '/middleware',
      patch: addLoopBreaker,
      expectedEffect: 'loops are broken',
      status: 'screened-out' as const,
      reasons: ['never fired on its target cluster'],
      resultVersionId: first.candidate.resultVersionId,
    };
    const withHistory = briefOf(brief.clusters, [earlier]);
    const repeat = checkCandidate(withHistory, draft(addLoopBreaker));
    expect(repeat.ok ? '' : repeat.rejected.reason).toContain('the same patch on the same base');
    expect(repeat.ok ? '' : repeat.rejected.reason).toContain('never fired on its target cluster');
    // The same harness reached by another patch (defaults written out) is the same edit.
    const spelledOut = [
      { op: 'add', path: '/middleware/0', value: { name: 'loop-breaker', maxRepeats: 3, action: 'block' } },
    ];
    const twin = checkCandidate(withHistory, draft(spelledOut));
    expect(twin.ok ? '' : twin.rejected.reason).toContain('it yields the same harness');
    // A proposal still waiting for a decision may be proposed again (recording it adds nothing).
    const pending = briefOf(brief.clusters, [{ ...earlier, status: 'proposed' }]);
    expect(checkCandidate(pending, draft(addLoopBreaker)).ok).toBe(true);
  });

  it('keeps the good candidates of a batch and rejects a second copy of one edit', () => {
    const { candidates, rejected } = checkCandidates(brief, [
      draft(addLoopBreaker),
      draft(addLoopBreaker, { clusterId: 'c-missing-dependency' }),
      'not even an object',
      draft([{ op: 'add', path: '/middleware/-', value: { name: 'dependency-precheck' } }], {
        clusterId: 'c-missing-dependency',
      }),
    ]);
    expect(candidates.map((candidate) => candidate.clusterId)).toEqual(['c-tool-call-loop', 'c-missing-dependency']);
    expect(rejected.map((entry) => entry.reason)).toEqual([
      expect.stringContaining(`the same edit as candidate ${candidates[0]!.proposalId}`),
      expect.stringContaining('not a candidate'),
    ]);
    expect(rejected[1]!.raw).toBe('"not even an object"');
  });
});

describe('concreteSurface and selectDiverse', () => {
  it('names the concrete surface of a pointer', () => {
    expect(concreteSurface('/middleware/-', brief.surfaces)).toBe('/middleware');
    expect(concreteSurface('/instructions/recovery', brief.surfaces)).toBe('/instructions/recovery');
    expect(concreteSurface('/tools/shell/description', brief.surfaces)).toBe('/tools/shell/description');
    expect(concreteSurface('/schemaVersion', brief.surfaces)).toBeUndefined();
  });

  it('prefers new clusters on new surfaces, and never picks one cluster twice on one surface', () => {
    const candidate = (clusterId: string, surface: string, id: string) =>
      ({ clusterId, surface, proposalId: id }) as unknown as Candidate;
    const pool = [
      candidate('a', '/middleware', '1'),
      candidate('a', '/middleware', '2'),
      candidate('b', '/middleware', '3'),
      candidate('b', '/rules', '4'),
      candidate('a', '/instructions/recovery', '5'),
    ];
    expect(selectDiverse(pool, 2).map((entry) => entry.proposalId)).toEqual(['1', '4']);
    expect(selectDiverse(pool, 5).map((entry) => entry.proposalId)).toEqual(['1', '4', '5']);
    expect(selectDiverse(pool, 0)).toEqual([]);
  });
});
