import { InputError, seededRandom } from '../core/index.js';
import type { DecisionInput } from './decisions.js';
import { type ClusterTotal, clusterBootstrapInterval, exactMcNemar } from './statistics.js';

/**
 * The acceptance gate: does a candidate harness beat its base on paired trials (same task, attempt and seed, run with
 * each)? Two rules. `paper` is the rule of Self-Harness (Zhang et al., 2026): Δheld-in ≥ 0 and Δheld-out ≥ 0 and one
 * of them > 0, with no test; one held-out cell can decide it. `strict` (the default) adds what makes a small benchmark
 * trustworthy: an exact McNemar test on the discordant pairs, bootstrap confidence intervals (resampling tasks) that
 * must rule out a large regression on either split, and no task the base passes reliably that the candidate fails
 * reliably. Pure: values in, a decision with readable reasons and its numbers out.
 */

export type GateSplit = 'held-in' | 'held-out';
export type TrialVerdict = 'passed' | 'failed' | 'invalid';
export type GateMode = 'strict' | 'paper';

/** One trial per harness on the same task, attempt and seed. */
export interface TrialPair {
  readonly task: string;
  readonly attempt: number;
  readonly seed?: number;
  readonly split: GateSplit;
  readonly base: TrialVerdict;
  readonly candidate: TrialVerdict;
}

export interface GateOptions {
  readonly mode?: GateMode;
  /** Largest one-sided McNemar p-value accepted (strict; default 0.05). */
  readonly alpha?: number;
  /** Bootstrap resamples (default 2000). */
  readonly bootstrapSamples?: number;
  /** Confidence of the intervals (default 0.95). */
  readonly confidence?: number;
  /** Seed of the bootstrap (default 1): the same pairs and seed give the same intervals. */
  readonly seed?: number;
  /** Strict: a split whose interval's lower end is below −this many points is a possible regression (default 10). */
  readonly maxRegressionPoints?: number;
  /** Strict: a task counts as passed (failed) reliably when all of at least this many valid attempts did (default 2). */
  readonly reliableMinAttempts?: number;
}

export interface SplitMetrics {
  readonly tasks: number;
  readonly pairs: number;
  readonly basePassed: number;
  readonly candidatePassed: number;
  /** Percent of pairs passed. */
  readonly basePassRate: number;
  readonly candidatePassRate: number;
  /** Candidate minus base, in percentage points. */
  readonly deltaPoints: number;
  /** Bootstrap interval of the delta, in points (absent without pairs). */
  readonly interval?: { readonly low: number; readonly high: number };
}

export interface TaskRegression {
  readonly task: string;
  readonly split: GateSplit;
  readonly attempts: number;
  readonly basePassed: number;
  readonly candidatePassed: number;
}

export interface GateMetrics {
  readonly mode: GateMode;
  readonly validPairs: number;
  /** Pairs left out because either trial was invalid (an infrastructure failure is no verdict on the harness). */
  readonly excludedPairs: number;
  readonly heldIn: SplitMetrics;
  readonly heldOut: SplitMetrics;
  readonly candidateOnly: number;
  readonly baseOnly: number;
  readonly pOneSided: number;
  readonly pTwoSided: number;
  readonly regressions: readonly TaskRegression[];
  readonly alpha: number;
  readonly confidence: number;
  readonly bootstrapSamples: number;
  readonly seed: number;
  readonly maxRegressionPoints: number;
  readonly reliableMinAttempts: number;
}

export interface GateResult {
  readonly decision: 'accepted' | 'rejected';
  readonly mode: GateMode;
  readonly reasons: readonly string[];
  readonly metrics: GateMetrics;
}

/** One trial's result, as the trial runner reports it; `pairTrials` matches base and candidate trials. */
export interface TrialRecord {
  readonly task: string;
  readonly attempt: number;
  readonly seed?: number;
  readonly split: GateSplit;
  readonly outcome: TrialVerdict;
}

const pairKey = (trial: { task: string; attempt: number; seed?: number }) =>
  `${trial.task}\u0000${trial.attempt}\u0000${trial.seed ?? ''}`;

/**
 * Matches base and candidate trials on (task, attempt, seed). Trials without a partner are returned apart, so a
 * caller can retry them; a key given twice on one side is an input error.
 */
export function pairTrials(
  base: readonly TrialRecord[],
  candidate: readonly TrialRecord[],
): { pairs: TrialPair[]; unmatched: TrialRecord[] } {
  const index = (trials: readonly TrialRecord[], side: string) => {
    const byKey = new Map<string, TrialRecord>();
    for (const trial of trials) {
      const key = pairKey(trial);
      if (byKey.has(key))
        throw new InputError(
          `The ${side} trials hold task ${trial.task} attempt ${trial.attempt}${trial.seed !== undefined ? ` seed ${trial.seed}` : ''} twice: give each (task, attempt, seed) once.`,
        );
      byKey.set(key, trial);
    }
    return byKey;
  };
  const baseByKey = index(base, 'base');
  const candidateByKey = index(candidate, 'candidate');
  const pairs: TrialPair[] = [];
  const unmatched: TrialRecord[] = [];
  for (const [key, trial] of baseByKey) {
    const partner = candidateByKey.get(key);
    if (!partner) unmatched.push(trial);
    else
      pairs.push({
        task: trial.task,
        attempt: trial.attempt,
        ...(trial.seed !== undefined ? { seed: trial.seed } : {}),
        split: trial.split,
        base: trial.outcome,
        candidate: partner.outcome,
      });
  }
  for (const [key, trial] of candidateByKey) if (!baseByKey.has(key)) unmatched.push(trial);
  return { pairs, unmatched };
}

const score = (verdict: TrialVerdict) => (verdict === 'passed' ? 1 : 0);
const points = (value: number) => `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(1)}`;
const splitName = (split: GateSplit) => (split === 'held-in' ? 'Held-in' : 'Held-out');

function splitMetrics(pairs: readonly TrialPair[], interval: SplitMetrics['interval']): SplitMetrics {
  const basePassed = pairs.reduce((total, pair) => total + score(pair.base), 0);
  const candidatePassed = pairs.reduce((total, pair) => total + score(pair.candidate), 0);
  const rate = (passed: number) => (pairs.length === 0 ? 0 : (100 * passed) / pairs.length);
  return {
    tasks: new Set(pairs.map((pair) => pair.task)).size,
    pairs: pairs.length,
    basePassed,
    candidatePassed,
    basePassRate: rate(basePassed),
    candidatePassRate: rate(candidatePassed),
    deltaPoints: rate(candidatePassed) - rate(basePassed),
    ...(interval !== undefined ? { interval } : {}),
  };
}

function taskTotals(pairs: readonly TrialPair[]): ClusterTotal[] {
  const byTask = new Map<string, { sum: number; count: number }>();
  for (const pair of pairs) {
    const total = byTask.get(pair.task) ?? { sum: 0, count: 0 };
    total.sum += score(pair.candidate) - score(pair.base);
    total.count += 1;
    byTask.set(pair.task, total);
  }
  return [...byTask.entries()].sort(([first], [second]) => first.localeCompare(second)).map(([, total]) => total);
}

/** Tasks all of whose (≥ `minAttempts`) valid attempts passed with the base and failed with the candidate. */
export function reliableRegressions(pairs: readonly TrialPair[], minAttempts: number): TaskRegression[] {
  const byTask = new Map<string, TrialPair[]>();
  for (const pair of pairs)
    byTask.set(`${pair.split}\u0000${pair.task}`, [...(byTask.get(`${pair.split}\u0000${pair.task}`) ?? []), pair]);
  const regressions: TaskRegression[] = [];
  for (const taskPairs of byTask.values()) {
    const basePassed = taskPairs.filter((pair) => pair.base === 'passed').length;
    const candidatePassed = taskPairs.filter((pair) => pair.candidate === 'passed').length;
    if (taskPairs.length >= minAttempts && basePassed === taskPairs.length && candidatePassed === 0)
      regressions.push({
        task: taskPairs[0]!.task,
        split: taskPairs[0]!.split,
        attempts: taskPairs.length,
        basePassed,
        candidatePassed,
      });
  }
  return regressions.sort((first, second) => first.task.localeCompare(second.task));
}

/** Judges a candidate on paired trials. Invalid trials are excluded; the reasons give every number the rule used. */
export function evaluateGate(pairs: readonly TrialPair[], options: GateOptions = {}): GateResult {
  const mode = options.mode ?? 'strict';
  const alpha = options.alpha ?? 0.05;
  const samples = options.bootstrapSamples ?? 2000;
  const confidence = options.confidence ?? 0.95;
  const seed = options.seed ?? 1;
  const maxRegressionPoints = options.maxRegressionPoints ?? 10;
  const reliableMinAttempts = options.reliableMinAttempts ?? 2;

  const seen = new Set<string>();
  for (const pair of pairs) {
    const key = `${pair.split}\u0000${pairKey(pair)}`;
    if (seen.has(key))
      throw new InputError(
        `Task ${pair.task} attempt ${pair.attempt}${pair.seed !== undefined ? ` seed ${pair.seed}` : ''} is paired twice: give each (task, attempt, seed) once.`,
      );
    seen.add(key);
  }
  const valid = pairs.filter((pair) => pair.base !== 'invalid' && pair.candidate !== 'invalid');
  const random = seededRandom(seed);
  const bySplit = (split: GateSplit) => {
    const splitPairs = valid.filter((pair) => pair.split === split);
    const interval = clusterBootstrapInterval(taskTotals(splitPairs), { samples, confidence, random });
    return splitMetrics(
      splitPairs,
      interval && { low: Number((interval.low * 100).toFixed(6)), high: Number((interval.high * 100).toFixed(6)) },
    );
  };
  const heldIn = bySplit('held-in');
  const heldOut = bySplit('held-out');
  const candidateOnly = valid.filter((pair) => pair.candidate === 'passed' && pair.base !== 'passed').length;
  const baseOnly = valid.filter((pair) => pair.base === 'passed' && pair.candidate !== 'passed').length;
  const test = exactMcNemar(candidateOnly, baseOnly);
  const regressions = reliableRegressions(valid, reliableMinAttempts);

  const reasons: string[] = [];
  const failures: string[] = [];
  const excluded = pairs.length - valid.length;
  if (excluded > 0) reasons.push(`Excluded ${excluded} of ${pairs.length} pairs with an invalid trial.`);
  const percentConfidence = `${Math.round(confidence * 100)}%`;
  for (const [split, metrics] of [
    ['held-in', heldIn],
    ['held-out', heldOut],
  ] as const) {
    if (metrics.pairs === 0) {
      failures.push(`${splitName(split)}: no valid trial pairs, so the split cannot be judged.`);
      continue;
    }
    const interval = metrics.interval
      ? ` (${percentConfidence} CI ${points(metrics.interval.low)} to ${points(metrics.interval.high)})`
      : '';
    reasons.push(
      `${splitName(split)}: ${metrics.basePassed} of ${metrics.pairs} trials passed with the base, ${metrics.candidatePassed} with the candidate, over ${metrics.tasks} tasks: Δ ${points(metrics.deltaPoints)} points${interval}.`,
    );
  }

  const bothJudged = heldIn.pairs > 0 && heldOut.pairs > 0;
  const paperMet =
    bothJudged &&
    heldIn.deltaPoints >= 0 &&
    heldOut.deltaPoints >= 0 &&
    (heldIn.deltaPoints > 0 || heldOut.deltaPoints > 0);
  if (bothJudged) {
    if (paperMet) reasons.push('Paper rule met: Δheld-in ≥ 0 and Δheld-out ≥ 0, and one of them > 0.');
    else if (heldIn.deltaPoints === 0 && heldOut.deltaPoints === 0)
      failures.push('Paper rule not met: a tie (Δheld-in = Δheld-out = 0) is no improvement.');
    else {
      const negative = [
        ...(heldIn.deltaPoints < 0 ? [`Δheld-in ${points(heldIn.deltaPoints)}`] : []),
        ...(heldOut.deltaPoints < 0 ? [`Δheld-out ${points(heldOut.deltaPoints)}`] : []),
      ];
      failures.push(`Paper rule not met: ${negative.join(' and ')} points below zero.`);
    }
  }

  if (mode === 'strict') {
    const testText = `the candidate alone passed ${candidateOnly} trial pairs, the base alone ${baseOnly}; exact McNemar p = ${test.pOneSided.toPrecision(3)} one-sided (two-sided ${test.pTwoSided.toPrecision(3)}), needed ≤ ${alpha}`;
    if (candidateOnly > baseOnly && test.pOneSided <= alpha) reasons.push(`Paired test passed: ${testText}.`);
    else failures.push(`Paired test failed: ${testText}.`);
    for (const [split, metrics] of [
      ['held-in', heldIn],
      ['held-out', heldOut],
    ] as const) {
      if (metrics.interval && metrics.interval.low < -maxRegressionPoints)
        failures.push(
          `${splitName(split)}: the ${percentConfidence} CI reaches ${points(metrics.interval.low)} points, so a regression larger than ${maxRegressionPoints} points is not ruled out.`,
        );
    }
    if (regressions.length === 0)
      reasons.push(
        `No reliable per-task regression (no task passed all of ≥ ${reliableMinAttempts} attempts with the base and none with the candidate).`,
      );
    for (const regression of regressions)
      failures.push(
        `Per-task regression on ${regression.task} (${regression.split}): passed ${regression.basePassed} of ${regression.attempts} attempts with the base, ${regression.candidatePassed} with the candidate.`,
      );
  }

  const decision = failures.length === 0 ? 'accepted' : 'rejected';
  return {
    decision,
    mode,
    reasons: [...failures, ...reasons],
    metrics: {
      mode,
      validPairs: valid.length,
      excludedPairs: excluded,
      heldIn,
      heldOut,
      candidateOnly,
      baseOnly,
      pOneSided: test.pOneSided,
      pTwoSided: test.pTwoSided,
      regressions,
      alpha,
      confidence,
      bootstrapSamples: samples,
      seed,
      maxRegressionPoints,
      reliableMinAttempts,
    },
  };
}

/**
 * The `validation-decide` input for a gate result (stage `gate`), for `recordDecision`: the gate's numbers become the
 * event's metrics, so the log shows why a proposal was accepted or rejected.
 */
export function gateDecisionInput(proposalId: string, result: GateResult): DecisionInput {
  return {
    proposalId,
    stage: 'gate',
    decision: result.decision,
    gate: result.mode,
    reasons: result.reasons,
    metrics: { ...result.metrics },
  };
}
