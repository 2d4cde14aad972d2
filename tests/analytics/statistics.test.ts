import { describe, expect, it } from 'vitest';
import {
  benjaminiHochbergAdjust,
  chiSquareSurvival,
  chiSquareTest,
  exactProportionsTest,
  fisherExactTest,
  holmAdjust,
  logGamma,
  proportionsTest,
  rateDifferenceInterval,
  wilsonInterval,
} from '../../analytics/statistics.js';

describe('wilsonInterval', () => {
  it('gives the score intervals of Newcombe (1998), table I', () => {
    // Newcombe, "Two-sided confidence intervals for the single proportion", Statistics in Medicine 17, method 3.
    const cases: [number, number, number, number][] = [
      [81, 263, 0.2553, 0.3662],
      [15, 148, 0.0624, 0.1605],
      [0, 20, 0, 0.1611],
      [1, 29, 0.0061, 0.1718],
    ];
    for (const [successes, trials, low, high] of cases) {
      const interval = wilsonInterval(successes, trials);
      expect(interval.low).toBeCloseTo(low, 4);
      expect(interval.high).toBeCloseTo(high, 4);
      expect(interval.estimate).toBe(successes / trials);
    }
  });

  it('is [0, 1] without trials, reaches 1 when every trial succeeds, and refuses impossible counts', () => {
    expect(wilsonInterval(0, 0)).toEqual({ estimate: 0, low: 0, high: 1 });
    expect(wilsonInterval(20, 20).high).toBe(1);
    expect(wilsonInterval(20, 20).low).toBeCloseTo(1 - 0.1611, 4);
    expect(() => wilsonInterval(5, 3)).toThrow('0 ≤ successes ≤ trials, got 5 of 3');
  });
});

describe('rateDifferenceInterval', () => {
  it("gives Newcombe's hybrid score interval (1998, method 10) for 56/70 − 48/80", () => {
    // Newcombe, "Interval estimation for the difference between independent proportions", example (a): 0.0524 to 0.3339.
    const interval = rateDifferenceInterval(56, 70, 48, 80);
    expect(interval.estimate).toBeCloseTo(0.2, 10);
    expect(interval.low).toBeCloseTo(0.0524, 4);
    expect(interval.high).toBeCloseTo(0.3339, 4);
  });
});

describe('exact tests', () => {
  it("reproduces Fisher's tea-tasting experiment and other textbook tables", () => {
    // Fisher (1935): 3 of 4 cups right, two-sided p = 34/70.
    expect(
      fisherExactTest([
        [3, 1],
        [1, 3],
      ]).pValue,
    ).toBeCloseTo(34 / 70, 12);
    // The example of the Wikipedia article on Fisher's exact test (also R's fisher.test): p = 0.002759.
    expect(
      fisherExactTest([
        [1, 9],
        [11, 3],
      ]).pValue,
    ).toBeCloseTo(0.0027594561852200836, 10);
    expect(
      fisherExactTest([
        [8, 2],
        [1, 5],
      ]).pValue,
    ).toBeCloseTo(0.034965034965034975, 10);
    expect(
      fisherExactTest([
        [0, 5],
        [0, 5],
      ]).pValue,
    ).toBe(1);
  });

  it('sums every 2×k table at most as likely as the observed one (Freeman–Halton)', () => {
    // Reference values by brute-force enumeration of all tables with the same margins.
    expect(exactProportionsTest([2, 7, 1], [10, 10, 10])).toEqual({
      pValue: expect.closeTo(0.023340078212641936, 10),
      method: 'freeman-halton-exact',
    });
    expect(exactProportionsTest([0, 5, 3], [6, 8, 7])?.pValue).toBeCloseTo(0.05909872721018232, 10);
    expect(exactProportionsTest([3, 1], [4, 4])).toEqual({
      pValue: expect.closeTo(34 / 70, 12),
      method: 'fisher-exact',
    });
  });

  it('declines the exact test when too many tables would have to be summed, and the combined test falls back', () => {
    expect(exactProportionsTest([500, 520, 610], [1000, 1000, 1000], 10_000)).toBeUndefined();
    const fallback = proportionsTest([500, 520, 610, 480, 530], [1000, 1000, 1000, 1000, 1000]);
    expect(fallback.method).toBe('chi-square');
    expect(fallback.degreesOfFreedom).toBe(4);
  });
});

describe('chi-square', () => {
  it('matches scipy.stats.chi2_contingency (correction=False) and the critical values of the distribution', () => {
    const two = chiSquareTest([
      [12, 5],
      [7, 9],
    ]);
    expect(two.statistic).toBeCloseTo(2.4305755196815575, 10);
    expect(two.pValue).toBeCloseTo(0.118989205532145, 10);
    expect(two.degreesOfFreedom).toBe(1);
    const three = chiSquareTest([
      [10, 20, 30],
      [6, 9, 17],
    ]);
    expect(three.statistic).toBeCloseTo(0.27157465150403504, 10);
    expect(three.pValue).toBeCloseTo(0.873028283380073, 10);
    expect(three.degreesOfFreedom).toBe(2);

    expect(chiSquareSurvival(3.841458820694124, 1)).toBeCloseTo(0.05, 12);
    expect(chiSquareSurvival(5.991464547107979, 2)).toBeCloseTo(0.05, 12);
    expect(chiSquareSurvival(10, 3)).toBeCloseTo(0.01856613546304325, 12);
    expect(chiSquareSurvival(50, 10)).toBeCloseTo(2.669083424904495e-7, 18);
    expect(logGamma(0.5)).toBeCloseTo(Math.log(Math.sqrt(Math.PI)), 12);
  });

  it('leaves out empty rows and columns, and has nothing to test in a table of one column', () => {
    expect(
      chiSquareTest([
        [3, 0, 4],
        [0, 0, 0],
        [5, 0, 1],
      ]).degreesOfFreedom,
    ).toBe(1);
    expect(chiSquareTest([[3], [5]])).toMatchObject({ pValue: 1, degreesOfFreedom: 0 });
  });
});

describe('corrections for many comparisons', () => {
  it("match R's p.adjust", () => {
    const p = [0.01, 0.04, 0.03, 0.005];
    // p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") = 0.03 0.06 0.06 0.02
    holmAdjust(p).forEach((value, index) => {
      expect(value).toBeCloseTo([0.03, 0.06, 0.06, 0.02][index] ?? Number.NaN, 12);
    });
    // p.adjust(…, "BH") = 0.02 0.04 0.04 0.02 (also scipy.stats.false_discovery_control)
    benjaminiHochbergAdjust(p).forEach((value, index) => {
      expect(value).toBeCloseTo([0.02, 0.04, 0.04, 0.02][index] ?? Number.NaN, 12);
    });
    expect(holmAdjust([0.5, 0.9])).toEqual([1, 1]);
    expect(holmAdjust([])).toEqual([]);
  });
});
