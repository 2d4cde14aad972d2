/**
 * Small, exact statistics for comparing failure rates: proportions with confidence intervals, tests of whether rates
 * differ, and corrections for testing many things at once. Pure functions of counts, so profiles, the validator and
 * notebooks get the same numbers.
 */

/** The z value of a two-sided 95% interval. */
export const Z_95 = 1.959963984540054;

export interface ProportionInterval {
  /** successes / trials (0 when there are no trials). */
  estimate: number;
  low: number;
  high: number;
}

/** The middle value (the mean of the two middle ones for an even count); undefined for no values. */
export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((first, second) => first - second);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/**
 * The Wilson score interval for a proportion (Newcombe 1998, method 3). Unlike the plain normal interval it stays
 * inside [0, 1] and keeps its coverage for small counts and rates near 0 or 1, which failure rates often are. With no
 * trials nothing is known: the interval is [0, 1].
 */
export function wilsonInterval(successes: number, trials: number, z = Z_95): ProportionInterval {
  checkCounts(successes, trials);
  if (trials === 0) return { estimate: 0, low: 0, high: 1 };
  const estimate = successes / trials;
  const denominator = 1 + (z * z) / trials;
  const centre = estimate + (z * z) / (2 * trials);
  const spread = z * Math.sqrt((estimate * (1 - estimate)) / trials + (z * z) / (4 * trials * trials));
  return {
    estimate,
    low: successes === 0 ? 0 : Math.max(0, (centre - spread) / denominator),
    high: successes === trials ? 1 : Math.min(1, (centre + spread) / denominator),
  };
}

/**
 * A confidence interval for the difference of two proportions, p1 − p2, by Newcombe's hybrid score method (1998,
 * method 10): built from the two Wilson intervals, so it behaves well for small counts where the Wald interval fails.
 */
export function rateDifferenceInterval(
  successes1: number,
  trials1: number,
  successes2: number,
  trials2: number,
  z = Z_95,
): ProportionInterval {
  const first = wilsonInterval(successes1, trials1, z);
  const second = wilsonInterval(successes2, trials2, z);
  const difference = first.estimate - second.estimate;
  return {
    estimate: difference,
    low: difference - Math.sqrt((first.estimate - first.low) ** 2 + (second.high - second.estimate) ** 2),
    high: difference + Math.sqrt((first.high - first.estimate) ** 2 + (second.estimate - second.low) ** 2),
  };
}

export interface TestResult {
  pValue: number;
  /** Which test produced the p-value. */
  method: 'fisher-exact' | 'freeman-halton-exact' | 'chi-square';
  /** The chi-square statistic, for the chi-square test. */
  statistic?: number;
  degreesOfFreedom?: number;
}

/**
 * Fisher's exact test of a 2×2 table [[a, b], [c, d]], two-sided: the probability, with all margins fixed, of a
 * table at most as likely as the one observed (the convention of R's `fisher.test`).
 */
export function fisherExactTest(table: readonly [readonly [number, number], readonly [number, number]]): TestResult {
  const [[a, b], [c, d]] = table;
  return { pValue: exactTwoByK([a, c], [a + b, c + d]), method: 'fisher-exact' };
}

/**
 * An exact test that k proportions are equal (Freeman–Halton, the 2×k generalisation of Fisher's test): with the
 * total of successes fixed, the probability of a split across groups at most as likely as the one observed. For two
 * groups it is Fisher's exact test. Returns `undefined` when more than `maxTables` tables would have to be summed;
 * use the chi-square test then, where the counts are large enough for it.
 */
export function exactProportionsTest(
  successes: readonly number[],
  trials: readonly number[],
  maxTables = 2_000_000,
): TestResult | undefined {
  if (successes.length !== trials.length) throw new RangeError('successes and trials must have the same length');
  successes.forEach((count, index) => {
    checkCounts(count, trials[index] ?? 0);
  });
  if (countTables(successes, trials) > maxTables) return undefined;
  return {
    pValue: exactTwoByK(successes, trials),
    method: successes.length === 2 ? 'fisher-exact' : 'freeman-halton-exact',
  };
}

/**
 * Pearson's chi-square test of independence for an r×c table of counts, without continuity correction. Rows or
 * columns that are all zero carry no information and are left out. The p-value is only trustworthy when the expected
 * counts are not small (the usual rule: all at least 5); prefer the exact test where it is feasible.
 */
export function chiSquareTest(table: readonly (readonly number[])[]): TestResult & { minimumExpected: number } {
  const rows = table.filter((row) => row.some((value) => value > 0));
  const columnCount = Math.max(0, ...rows.map((row) => row.length));
  const columnTotals = Array.from({ length: columnCount }, (_, column) =>
    rows.reduce((sum, row) => sum + (row[column] ?? 0), 0),
  );
  const columns = columnTotals.flatMap((total, column) => (total > 0 ? [column] : []));
  const rowTotals = rows.map((row) => row.reduce((sum, value) => sum + value, 0));
  const total = rowTotals.reduce((sum, value) => sum + value, 0);
  const degreesOfFreedom = (rows.length - 1) * (columns.length - 1);
  if (degreesOfFreedom <= 0) {
    return { pValue: 1, statistic: 0, degreesOfFreedom: 0, method: 'chi-square', minimumExpected: 0 };
  }
  let statistic = 0;
  let minimumExpected = Number.POSITIVE_INFINITY;
  rows.forEach((row, rowIndex) => {
    for (const column of columns) {
      const expected = ((rowTotals[rowIndex] ?? 0) * (columnTotals[column] ?? 0)) / total;
      minimumExpected = Math.min(minimumExpected, expected);
      statistic += ((row[column] ?? 0) - expected) ** 2 / expected;
    }
  });
  return {
    pValue: chiSquareSurvival(statistic, degreesOfFreedom),
    statistic,
    degreesOfFreedom,
    method: 'chi-square',
    minimumExpected,
  };
}

/**
 * Tests whether k proportions differ: exactly where the number of tables allows, else by chi-square. This is the
 * test a profile runs per mechanism across models.
 */
export function proportionsTest(successes: readonly number[], trials: readonly number[]): TestResult {
  return (
    exactProportionsTest(successes, trials) ??
    chiSquareTest([successes, successes.map((count, index) => (trials[index] ?? 0) - count)])
  );
}

/**
 * Holm's step-down correction: adjusted p-values that control the family-wise error rate (the chance of any false
 * finding) without assuming independence. Same order as the input; matches R's `p.adjust(p, "holm")`.
 */
export function holmAdjust(pValues: readonly number[]): number[] {
  const order = pValues.map((value, index) => ({ value, index })).sort((left, right) => left.value - right.value);
  const adjusted = new Array<number>(pValues.length);
  let running = 0;
  order.forEach((entry, rank) => {
    running = Math.max(running, Math.min(1, (pValues.length - rank) * entry.value));
    adjusted[entry.index] = running;
  });
  return adjusted;
}

/**
 * The Benjamini–Hochberg step-up correction: adjusted p-values that control the false discovery rate (the expected
 * share of false findings among those reported). Same order as the input; matches R's `p.adjust(p, "BH")`.
 */
export function benjaminiHochbergAdjust(pValues: readonly number[]): number[] {
  const order = pValues.map((value, index) => ({ value, index })).sort((left, right) => right.value - left.value);
  const adjusted = new Array<number>(pValues.length);
  let running = 1;
  order.forEach((entry, position) => {
    const rank = pValues.length - position;
    running = Math.min(running, (pValues.length / rank) * entry.value);
    adjusted[entry.index] = Math.min(1, running);
  });
  return adjusted;
}

/** P(X ≥ statistic) for X chi-square distributed with the given degrees of freedom. */
export function chiSquareSurvival(statistic: number, degreesOfFreedom: number): number {
  if (statistic <= 0) return 1;
  return regularizedGammaQ(degreesOfFreedom / 2, statistic / 2);
}

function checkCounts(successes: number, trials: number): void {
  if (!Number.isInteger(successes) || !Number.isInteger(trials) || successes < 0 || successes > trials) {
    throw new RangeError(`counts must be whole numbers with 0 ≤ successes ≤ trials, got ${successes} of ${trials}`);
  }
}

/**
 * Sums the probabilities of all 2×k tables with the observed margins that are at most as likely as the observed one.
 * A table is the number of successes per group; its probability is the multivariate hypergeometric
 * Π C(nᵢ, aᵢ) / C(N, A). A relative tolerance absorbs rounding, as R does.
 */
function exactTwoByK(successes: readonly number[], trials: readonly number[]): number {
  const totalSuccesses = successes.reduce((sum, value) => sum + value, 0);
  const totalTrials = trials.reduce((sum, value) => sum + value, 0);
  const logDenominator = logChoose(totalTrials, totalSuccesses);
  const logChooses = trials.map((count) => Array.from({ length: count + 1 }, (_, value) => logChoose(count, value)));
  const observed = successes.reduce((sum, value, index) => sum + (logChooses[index]?.[value] ?? 0), 0) - logDenominator;
  const threshold = observed + 1e-7;
  // The most successes the groups after index i can still take.
  const capacityAfter = trials.map((_, index) => trials.slice(index + 1).reduce((sum, value) => sum + value, 0));
  let pValue = 0;
  const visit = (index: number, remaining: number, logProbability: number) => {
    const count = trials[index] ?? 0;
    if (index === trials.length - 1) {
      if (remaining > count) return;
      const total = logProbability + (logChooses[index]?.[remaining] ?? 0) - logDenominator;
      if (total <= threshold) pValue += Math.exp(total);
      return;
    }
    const lowest = Math.max(0, remaining - (capacityAfter[index] ?? 0));
    const highest = Math.min(count, remaining);
    for (let value = lowest; value <= highest; value++) {
      visit(index + 1, remaining - value, logProbability + (logChooses[index]?.[value] ?? 0));
    }
  };
  if (trials.length === 0) return 1;
  visit(0, totalSuccesses, 0);
  return Math.min(1, pValue);
}

/**
 * An upper bound on how many 2×k tables have these margins: each group but the last takes 0…min(nᵢ, A) successes.
 * Cheap to compute, and the enumeration never visits more tables than this.
 */
function countTables(successes: readonly number[], trials: readonly number[]): number {
  const totalSuccesses = successes.reduce((sum, value) => sum + value, 0);
  return trials.slice(0, -1).reduce((product, count) => product * (Math.min(count, totalSuccesses) + 1), 1);
}

function logChoose(n: number, k: number): number {
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1);
}

/** ln Γ(x) for x > 0 (Lanczos approximation, g = 7, 9 terms; about 15 significant digits). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const coefficients = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  const shifted = x - 1;
  let sum = coefficients[0] ?? 0;
  for (let index = 1; index < coefficients.length; index++) sum += (coefficients[index] ?? 0) / (shifted + index);
  const t = shifted + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (shifted + 0.5) * Math.log(t) - t + Math.log(sum);
}

/** Q(a, x) = Γ(a, x) / Γ(a): by its series below a + 1, by a continued fraction above (Numerical Recipes 6.2). */
function regularizedGammaQ(a: number, x: number): number {
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < 1000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-15) break;
    }
    return Math.max(0, 1 - sum * Math.exp(-x + a * Math.log(x) - logGamma(a)));
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let n = 1; n < 1000; n++) {
    const an = -n * (n - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return Math.min(1, Math.exp(-x + a * Math.log(x) - logGamma(a)) * h);
}
