import { describe, expect, it } from 'vitest';
import {
  evaluateGate,
  exactMcNemar,
  type GateSplit,
  pairTrials,
  type TrialPair,
  type TrialVerdict,
} from '../../validator/index.js';

/** Pairs for `tasks` tasks of a split, two attempts each, with the verdicts `pick` gives per task and attempt. */
function pairs(
  split: GateSplit,
  tasks: number,
  pick: (task: number, attempt: number) => [TrialVerdict, TrialVerdict],
): TrialPair[] {
  const result: TrialPair[] = [];
  for (let task = 0; task < tasks; task += 1)
    for (const attempt of [1, 2]) {
      const [base, candidate] = pick(task, attempt);
      result.push({ task: `${split}-task-${task}`, attempt, seed: 7, split, base, candidate });
    }
  return result;
}

/** Base passes the first half of the tasks; the candidate also passes tasks up to `improvedUpTo`. */
const improving =
  (tasks: number, improvedUpTo: number) =>
  (task: number): [TrialVerdict, TrialVerdict] => [
    task < tasks / 2 ? 'passed' : 'failed',
    task < improvedUpTo ? 'passed' : 'failed',
  ];

describe('exact McNemar test', () => {
  it('gives the known binomial p-values', () => {
    const tenTwo = exactMcNemar(10, 2);
    expect(tenTwo.pOneSided).toBeCloseTo(79 / 4096, 12);
    expect(tenTwo.pTwoSided).toBeCloseTo(158 / 4096, 12); // 0.0386, as scipy.stats.binomtest(10, 12)
    expect(exactMcNemar(7, 0).pTwoSided).toBeCloseTo(1 / 64, 12);
    expect(exactMcNemar(7, 0).pOneSided).toBeCloseTo(1 / 128, 12);
    expect(exactMcNemar(5, 5).pTwoSided).toBe(1);
    expect(exactMcNemar(0, 0)).toMatchObject({ pOneSided: 1, pTwoSided: 1 });
    expect(exactMcNemar(2, 10).pOneSided).toBeCloseTo(4083 / 4096, 12);
  });
});

describe('acceptance gate', () => {
  const clearImprovement = [...pairs('held-in', 20, improving(20, 16)), ...pairs('held-out', 14, improving(14, 11))];

  it('accepts a clear improvement in both modes, with the numbers in its reasons', () => {
    const strict = evaluateGate(clearImprovement);
    expect(strict.decision).toBe('accepted');
    expect(strict.metrics.heldIn).toMatchObject({ pairs: 40, basePassed: 20, candidatePassed: 32, deltaPoints: 30 });
    expect(strict.metrics.heldOut).toMatchObject({ pairs: 28, basePassed: 14, candidatePassed: 22 });
    expect(strict.metrics.candidateOnly).toBe(20);
    expect(strict.metrics.baseOnly).toBe(0);
    expect(strict.reasons.join('\n')).toContain('Held-in: 20 of 40 trials passed with the base, 32 with the candidate');
    expect(strict.reasons.join('\n')).toMatch(/exact McNemar p = 9\.54e-7 one-sided/);
    expect(evaluateGate(clearImprovement, { mode: 'paper' }).decision).toBe('accepted');
  });

  it('rejects a harmful candidate in both modes', () => {
    const harmful = [
      ...pairs('held-in', 20, (task) => [task < 10 ? 'passed' : 'failed', task < 6 ? 'passed' : 'failed']),
      ...pairs('held-out', 14, (task) => [task < 7 ? 'passed' : 'failed', task < 7 ? 'passed' : 'failed']),
    ];
    for (const mode of ['strict', 'paper'] as const) {
      const result = evaluateGate(harmful, { mode });
      expect(result.decision).toBe('rejected');
      expect(result.reasons[0]).toBe('Paper rule not met: Δheld-in −20.0 points below zero.');
    }
  });

  it('rejects a tie in both modes', () => {
    const tie = [
      ...pairs('held-in', 10, (task) => [task < 5 ? 'passed' : 'failed', task < 5 ? 'passed' : 'failed']),
      ...pairs('held-out', 6, (task) => [task < 3 ? 'passed' : 'failed', task < 3 ? 'passed' : 'failed']),
    ];
    for (const mode of ['strict', 'paper'] as const) {
      const result = evaluateGate(tie, { mode });
      expect(result.decision).toBe('rejected');
      expect(result.reasons).toContain('Paper rule not met: a tie (Δheld-in = Δheld-out = 0) is no improvement.');
    }
  });

  it('rejects in strict mode a task the base passes reliably and the candidate fails reliably, even with Δ ≥ 0', () => {
    const withRegression = clearImprovement.map((pair) =>
      pair.task === 'held-in-task-0' ? { ...pair, base: 'passed' as const, candidate: 'failed' as const } : pair,
    );
    const paper = evaluateGate(withRegression, { mode: 'paper' });
    expect(paper.decision).toBe('accepted');
    const strict = evaluateGate(withRegression);
    expect(strict.metrics.heldIn.deltaPoints).toBeGreaterThan(0);
    expect(strict.decision).toBe('rejected');
    expect(strict.metrics.regressions).toEqual([
      { task: 'held-in-task-0', split: 'held-in', attempts: 2, basePassed: 2, candidatePassed: 0 },
    ]);
    expect(strict.reasons[0]).toBe(
      'Per-task regression on held-in-task-0 (held-in): passed 2 of 2 attempts with the base, 0 with the candidate.',
    );
  });

  it('rejects in strict mode a small improvement the paper rule accepts on one cell', () => {
    const oneCell = [
      ...pairs('held-in', 10, (task) => [task < 5 ? 'passed' : 'failed', task < 5 ? 'passed' : 'failed']),
      ...pairs('held-out', 6, (task, attempt) => [
        task < 3 ? 'passed' : 'failed',
        task < 3 || (task === 3 && attempt === 1) ? 'passed' : 'failed',
      ]),
    ];
    expect(evaluateGate(oneCell, { mode: 'paper' }).decision).toBe('accepted');
    const strict = evaluateGate(oneCell);
    expect(strict.decision).toBe('rejected');
    expect(strict.reasons[0]).toMatch(
      /^Paired test failed: the candidate alone passed 1 trial pairs, the base alone 0; exact McNemar p = 0\.500/,
    );
  });

  it('excludes pairs with an invalid trial and says how many', () => {
    const withInvalid = clearImprovement.map((pair, index) =>
      index < 3 ? { ...pair, candidate: 'invalid' as const } : pair,
    );
    const result = evaluateGate(withInvalid);
    expect(result.metrics.excludedPairs).toBe(3);
    expect(result.metrics.validPairs).toBe(clearImprovement.length - 3);
    expect(result.reasons).toContain(`Excluded 3 of ${clearImprovement.length} pairs with an invalid trial.`);
  });

  it('rejects when a split has no valid pairs', () => {
    const result = evaluateGate(pairs('held-in', 20, improving(20, 16)), { mode: 'paper' });
    expect(result.decision).toBe('rejected');
    expect(result.reasons[0]).toBe('Held-out: no valid trial pairs, so the split cannot be judged.');
  });

  it('gives the same bootstrap intervals for the same seed, and others for another seed', () => {
    const mixed = [
      ...pairs('held-in', 20, (task, attempt) => [
        (task + attempt) % 3 === 0 ? 'passed' : 'failed',
        (task * attempt) % 2 === 0 ? 'passed' : 'failed',
      ]),
      ...pairs('held-out', 12, (task, attempt) => [
        task % 2 === 0 ? 'passed' : 'failed',
        attempt === 1 ? 'passed' : 'failed',
      ]),
    ];
    const first = evaluateGate(mixed, { seed: 42, bootstrapSamples: 30 }).metrics;
    const again = evaluateGate(mixed, { seed: 42, bootstrapSamples: 30 }).metrics;
    const other = evaluateGate(mixed, { seed: 43, bootstrapSamples: 30 }).metrics;
    expect(again.heldIn.interval).toEqual(first.heldIn.interval);
    expect(again.heldOut.interval).toEqual(first.heldOut.interval);
    expect([other.heldIn.interval, other.heldOut.interval]).not.toEqual([
      first.heldIn.interval,
      first.heldOut.interval,
    ]);
    const interval = first.heldIn.interval!;
    expect(interval.low).toBeLessThanOrEqual(first.heldIn.deltaPoints);
    expect(interval.high).toBeGreaterThanOrEqual(first.heldIn.deltaPoints);
  });

  it('refuses a (task, attempt, seed) paired twice', () => {
    const doubled = [...clearImprovement, clearImprovement[0]!];
    expect(() => evaluateGate(doubled)).toThrow('Task held-in-task-0 attempt 1 seed 7 is paired twice');
  });
});

describe('pairing trials', () => {
  it('matches base and candidate trials on task, attempt and seed, returning the unmatched ones', () => {
    const base = [
      { task: 'a', attempt: 1, seed: 1, split: 'held-in' as const, outcome: 'passed' as const },
      { task: 'a', attempt: 2, seed: 2, split: 'held-in' as const, outcome: 'failed' as const },
    ];
    const candidate = [
      { task: 'a', attempt: 1, seed: 1, split: 'held-in' as const, outcome: 'failed' as const },
      { task: 'b', attempt: 1, seed: 1, split: 'held-out' as const, outcome: 'passed' as const },
    ];
    const { pairs: matched, unmatched } = pairTrials(base, candidate);
    expect(matched).toEqual([
      { task: 'a', attempt: 1, seed: 1, split: 'held-in', base: 'passed', candidate: 'failed' },
    ]);
    expect(unmatched.map((trial) => `${trial.task}/${trial.attempt}`)).toEqual(['a/2', 'b/1']);
    expect(() => pairTrials([...base, base[0]!], candidate)).toThrow(
      'The base trials hold task a attempt 1 seed 1 twice',
    );
  });
});
