import { describe, expect, it } from 'vitest';
import { mechanisms } from '../../analytics/index.js';
import {
  applySpecPatch,
  computeVersionId,
  defaultHarnessSpec,
  defaultVersionId,
  isEditablePath,
  parseHarnessSpec,
} from '../../harness/index.js';
import {
  checkCandidate,
  draftsForCluster,
  MECHANISM_ALTERNATIVES,
  proposalIdOf,
  RuleProposer,
} from '../../proposer/index.js';
import { briefOf, cardsByMechanism } from './cards.js';

const cards = cardsByMechanism();

describe('the rule-based proposer, mechanism by mechanism', () => {
  it('has alternatives on at least two surfaces for every mechanism the detectors know', () => {
    for (const mechanism of mechanisms) {
      const drafts = draftsForCluster(defaultHarnessSpec, cards[mechanism]!);
      expect(drafts.length, mechanism).toBeGreaterThanOrEqual(2);
      expect(new Set(drafts.map((draft) => draft.surface)).size, mechanism).toBeGreaterThanOrEqual(2);
      expect(MECHANISM_ALTERNATIVES[mechanism]?.length).toBe(drafts.length);
    }
  });

  it('writes only valid, in-surface patches that change the default harness', () => {
    for (const mechanism of mechanisms) {
      const card = cards[mechanism]!;
      for (const draft of draftsForCluster(defaultHarnessSpec, card)) {
        const check = checkCandidate(briefOf([card]), draft);
        expect(check.ok ? '' : check.rejected.reason, `${mechanism} ${draft.surface}`).toBe('');
        if (!check.ok) continue;
        const applied = applySpecPatch(defaultHarnessSpec, check.candidate.patch);
        expect(applied.ok).toBe(true);
        if (!applied.ok) continue;
        expect(computeVersionId(applied.spec)).not.toBe(defaultVersionId());
        for (const operation of check.candidate.patch) expect(isEditablePath(operation.path)).toBe(true);
        expect(check.candidate).toMatchObject({ clusterId: card.clusterId, mechanism });
        expect(check.candidate.preserve).toContain('pass-1');
      }
    }
  });

  it('takes parameters from the evidence', () => {
    const first = (mechanism: string) => draftsForCluster(defaultHarnessSpec, cards[mechanism]!)[0]!;
    // `make test` failed 3 and 4 times: the guard acts after 2 failures, before the third.
    expect(first('repeated-failed-command').patch).toEqual([
      { op: 'add', path: '/middleware/-', value: { name: 'failed-command-guard', maxFailures: 2 } },
    ]);
    // Loops of 5 and 6 identical calls: the 4th is blocked.
    expect(first('tool-call-loop').patch).toEqual([
      { op: 'add', path: '/middleware/-', value: { name: 'loop-breaker', maxRepeats: 4, action: 'block' } },
    ]);
    // 14 and 20 read-only calls: the nudge comes after 7.
    expect(first('exploration-without-implementation').patch).toEqual([
      { op: 'add', path: '/middleware/-', value: { name: 'exploration-nudge', maxReadOnlyActions: 7 } },
    ]);
    // The turn budget ran out: 50 → 75 turns.
    expect(first('budget-exhaustion').patch).toEqual([{ op: 'replace', path: '/budgets/maxTurns', value: 75 }]);
    expect(first('missing-required-artifact').patch).toEqual([
      { op: 'add', path: '/middleware/-', value: { name: 'artifact-check', fromInstruction: true } },
    ]);
    expect(first('lost-environment-state').patch).toEqual([
      { op: 'add', path: '/middleware/-', value: { name: 'persistent-shell' } },
    ]);
  });

  it('writes a rule that matches the failures seen in the evidence, with a message naming what was missing', () => {
    const drafts = draftsForCluster(defaultHarnessSpec, cards['missing-dependency']!);
    const rule = drafts.find((draft) => draft.surface === '/rules')!.patch[0] as {
      value: { trigger: { output: string }; action: { message: string } };
    };
    const pattern = new RegExp(rule.value.trigger.output);
    expect(pattern.test('bash: jq: command not found')).toBe(true);
    expect(pattern.test("ModuleNotFoundError: No module named 'numpy'")).toBe(true);
    expect(pattern.test('make: *** [test] Error 1')).toBe(false);
    expect(rule.value.action.message).toContain('`jq`');
    expect(rule.value.action.message).toContain('`numpy`');

    const repeated = draftsForCluster(defaultHarnessSpec, cards['repeated-failed-command']!).find(
      (draft) => draft.surface === '/rules',
    )!.patch[0] as { value: { id: string; trigger: { command: string; count: number } } };
    expect(repeated.value.id).toBe('failed-again-make-test');
    expect(new RegExp(repeated.value.trigger.command).test('make test -j4')).toBe(true);
    expect(new RegExp(repeated.value.trigger.command).test('cd src && make test')).toBe(true);
    expect(new RegExp(repeated.value.trigger.command).test('pytest')).toBe(false);
    expect(new RegExp(repeated.value.trigger.command).test('make install')).toBe(false);
    expect(repeated.value.trigger.count).toBe(2);

    // A loop is matched on the exact call the detector quoted, from the count the shortest loop reached minus one.
    const loop = draftsForCluster(defaultHarnessSpec, cards['tool-call-loop']!).find(
      (draft) => draft.surface === '/rules',
    )!.patch[0] as { value: { trigger: { command: string; count: number }; action: { message: string } } };
    const looped = new RegExp(loop.value.trigger.command);
    expect(looped.test('cat  notes.txt')).toBe(true);
    expect(looped.test('cat other.txt')).toBe(false);
    expect(loop.value.trigger.count).toBe(4);
    expect(loop.value.action.message).toContain('`cat notes.txt` 4 times');
  });

  it('appends instruction text to a section instead of replacing what is there', () => {
    const spec = parseHarnessSpec({
      ...defaultHarnessSpec,
      instructions: { ...defaultHarnessSpec.instructions, execution: 'Prefer python3 for data work.' },
    });
    const draft = draftsForCluster(spec, cards['lost-environment-state']!).find(
      (entry) => entry.surface === '/instructions/execution',
    )!;
    const value = (draft.patch[0] as { value: string }).value;
    expect(value.startsWith('Prefer python3 for data work.\n')).toBe(true);
    expect(value).toContain('Chain dependent commands with &&');
  });

  it('skips an alternative the harness has already, and tightens one whose parameters differ', () => {
    const spec = parseHarnessSpec({
      ...defaultHarnessSpec,
      middleware: [{ name: 'artifact-check' }, { name: 'failed-command-guard', maxFailures: 5 }],
    });
    const artifact = draftsForCluster(spec, cards['missing-required-artifact']!);
    expect(artifact.map((draft) => draft.surface)).toEqual(['/instructions/verification', '/rules']);
    const guard = draftsForCluster(spec, cards['repeated-failed-command']!)[0]!;
    expect(guard.patch).toEqual([
      { op: 'replace', path: '/middleware/1', value: { name: 'failed-command-guard', maxFailures: 2 } },
    ]);
  });
});

describe('RuleProposer.propose', () => {
  const three = [
    { ...cards['repeated-failed-command']!, rank: 1 },
    { ...cards['missing-dependency']!, rank: 2 },
    { ...cards['missing-required-artifact']!, rank: 3 },
  ];

  it('spreads K candidates over clusters and surfaces, in a fixed order', async () => {
    const result = await new RuleProposer().propose(briefOf(three), { count: 3 });
    expect(result.candidates.map((candidate) => [candidate.clusterId, candidate.surface])).toEqual([
      ['c-repeated-failed-command', '/middleware'],
      ['c-missing-dependency', '/rules'],
      ['c-missing-required-artifact', '/instructions/verification'],
    ]);
    const again = await new RuleProposer().propose(briefOf(three), { count: 3 });
    expect(again.candidates).toEqual(result.candidates);
  });

  it('offers several surfaces for one cluster when it is the only one, never two on the same surface', async () => {
    const result = await new RuleProposer().propose(briefOf([cards['lost-environment-state']!]), { count: 5 });
    const surfaces = result.candidates.map((candidate) => candidate.surface);
    expect(surfaces).toEqual(['/middleware', '/instructions/execution', '/tools/shell/description']);
  });

  it('never proposes an edit that was rejected on the same base, and offers the next alternative instead', async () => {
    const brief = briefOf([cards['repeated-failed-command']!]);
    const first = (await new RuleProposer().propose(brief, { count: 1 })).candidates[0]!;
    const rejected = briefOf(
      [cards['repeated-failed-command']!],
      [
        {
          proposalId: proposalIdOf(defaultVersionId(), first.patch),
          baseVersionId: defaultVersionId(),
          surface: first.surface,
          patch: first.patch,
          expectedEffect: first.expectedEffect,
          status: 'rejected',
          reasons: ['held-in pass rate fell by 5 points'],
          resultVersionId: first.resultVersionId,
        },
      ],
    );
    const result = await new RuleProposer().propose(rejected, { count: 1 });
    expect(result.candidates.map((candidate) => candidate.surface)).toEqual(['/instructions/recovery']);
    expect(result.rejected).toHaveLength(1);
    expect(result.rejected[0]!.reason).toContain(`repeats proposal ${first.proposalId}`);
    expect(result.rejected[0]!.reason).toContain('held-in pass rate fell by 5 points');
  });

  it('answers with no candidate when there is no cluster, or nothing left to add', async () => {
    expect(await new RuleProposer().propose(briefOf([]), { count: 3 })).toEqual({ candidates: [], rejected: [] });
    const everything = parseHarnessSpec({
      ...defaultHarnessSpec,
      middleware: [{ name: 'exploration-nudge', maxReadOnlyActions: 7 }],
      instructions: {
        ...defaultHarnessSpec.instructions,
        execution:
          'Do not explore for long: after a few commands to look around, write the files the task asks for, then test and refine them.',
      },
    });
    const result = await new RuleProposer().propose(
      briefOf([cards['exploration-without-implementation']!], [], everything, computeVersionId(everything)),
      { count: 3 },
    );
    expect(result.candidates).toEqual([]);
  });
});
