/**
 * The statistics the acceptance gate needs, exact and deterministic: binomial tails for the exact McNemar (sign) test,
 * a seeded random source and a percentile bootstrap over clusters (tasks). Pure functions.
 */

const logFactorials: number[] = [0];

function logFactorial(n: number): number {
  for (let index = logFactorials.length; index <= n; index += 1)
    logFactorials.push(logFactorials[index - 1]! + Math.log(index));
  return logFactorials[n]!;
}

/** P(X = k) for X ~ Binomial(n, 1/2). */
function halfBinomialProbability(k: number, n: number): number {
  return Math.exp(logFactorial(n) - logFactorial(k) - logFactorial(n - k) - n * Math.LN2);
}

/** P(X ≥ k) for X ~ Binomial(n, 1/2). */
export function binomialUpperTail(k: number, n: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  let total = 0;
  for (let value = k; value <= n; value += 1) total += halfBinomialProbability(value, n);
  return Math.min(1, total);
}

export interface McNemarResult {
  /** Discordant pairs the candidate alone passed. */
  readonly candidateOnly: number;
  /** Discordant pairs the base alone passed. */
  readonly baseOnly: number;
  /** P(at least `candidateOnly` of the discordant pairs favour the candidate) if neither harness is better. */
  readonly pOneSided: number;
  /** Twice the smaller tail, at most 1. */
  readonly pTwoSided: number;
}

/**
 * The exact McNemar test (a sign test on the discordant pairs): under no difference, each discordant pair favours
 * either side with probability 1/2. With no discordant pairs both p-values are 1.
 */
export function exactMcNemar(candidateOnly: number, baseOnly: number): McNemarResult {
  const n = candidateOnly + baseOnly;
  const upper = binomialUpperTail(candidateOnly, n);
  const lower = binomialUpperTail(baseOnly, n);
  return { candidateOnly, baseOnly, pOneSided: upper, pTwoSided: Math.min(1, 2 * Math.min(upper, lower)) };
}

/** One cluster's contribution to a ratio estimate: a sum of values and how many there were. */
export interface ClusterTotal {
  readonly sum: number;
  readonly count: number;
}

/**
 * Percentile bootstrap interval for Σsum / Σcount, resampling whole clusters with replacement (tasks: attempts of one
 * task are not independent). Deterministic for a given `random`. Undefined when there are no clusters.
 */
export function clusterBootstrapInterval(
  clusters: readonly ClusterTotal[],
  options: { readonly samples: number; readonly confidence: number; readonly random: () => number },
): { readonly low: number; readonly high: number } | undefined {
  if (clusters.length === 0) return undefined;
  const estimates: number[] = [];
  for (let sample = 0; sample < options.samples; sample += 1) {
    let sum = 0;
    let count = 0;
    for (let draw = 0; draw < clusters.length; draw += 1) {
      const cluster = clusters[Math.floor(options.random() * clusters.length)]!;
      sum += cluster.sum;
      count += cluster.count;
    }
    estimates.push(count === 0 ? 0 : sum / count);
  }
  estimates.sort((first, second) => first - second);
  const tail = (1 - options.confidence) / 2;
  const at = (quantile: number) =>
    estimates[Math.min(estimates.length - 1, Math.max(0, Math.floor(quantile * estimates.length)))]!;
  return { low: at(tail), high: at(1 - tail - 1e-12) };
}
