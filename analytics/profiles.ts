import { type EventLog, SystemError, UserError } from '../core/index.js';
import { prepareAnalytics } from './schema.js';
import {
  benjaminiHochbergAdjust,
  fisherExactTest,
  holmAdjust,
  proportionsTest,
  rateDifferenceInterval,
  type TestResult,
  wilsonInterval,
} from './statistics.js';

/**
 * Model failure profiles: per model, how often each failure mechanism occurs among its failed runs, and which
 * mechanisms set models apart beyond chance. This answers "which failures are this model's own", the question a
 * harness edit for one model starts from. `buildProfiles` is the pure core over counts; `computeProfiles` reads the
 * counts from the log (`runs` and the `detected_mechanisms` view).
 */

/** What a profile is computed from, per model: run counts, and failed runs per mechanism. */
export interface ModelCounts {
  model: string;
  /** Runs that are not invalid (infrastructure failures are nobody's failure mode). */
  validRuns: number;
  failedRuns: number;
  /** Failed runs in which each mechanism was detected (a run counts once per mechanism). */
  mechanismRuns: Record<string, number>;
}

export type Correction = 'holm' | 'bh';

export interface ProfileOptions {
  /** The models to compare (default: every model with failed runs). */
  models?: readonly string[];
  split?: string;
  dataset?: string;
  /** Significance level after correction (0.05). */
  alpha?: number;
  /** Holm (family-wise error, the default) or Benjamini–Hochberg (false discovery rate). */
  correction?: Correction;
}

export interface MechanismRate {
  mechanism: string;
  /** Failed runs of the model with this mechanism. */
  runs: number;
  /** runs / failed runs, with its 95% Wilson interval. */
  rate: number;
  low: number;
  high: number;
}

export interface ModelProfile {
  model: string;
  validRuns: number;
  failedRuns: number;
  mechanisms: MechanismRate[];
}

/** One model against another on one mechanism: the rate difference (higher − lower) with its 95% interval. */
export interface PairwiseDifference {
  mechanism: string;
  higher: string;
  lower: string;
  higherRate: number;
  lowerRate: number;
  difference: number;
  differenceLow: number;
  differenceHigh: number;
  pValue: number;
  adjustedPValue: number;
  significant: boolean;
}

/** The test of one mechanism across all compared models, and its pairwise follow-ups. */
export interface MechanismComparison {
  mechanism: string;
  method: TestResult['method'];
  pValue: number;
  adjustedPValue: number;
  significant: boolean;
  pairs: PairwiseDifference[];
}

/** A mechanism that occurs in one model's failures significantly more often than in every other model's. */
export interface OwnFailure {
  model: string;
  mechanism: string;
  rate: number;
  /** The largest rate among the other models. */
  nextRate: number;
  nextModel: string;
}

export interface ModelProfiles {
  alpha: number;
  correction: Correction;
  /** The mechanisms compared: those detected in at least one compared model's failed runs. */
  mechanisms: string[];
  models: ModelProfile[];
  comparisons: MechanismComparison[];
  /** The significant pairwise differences, largest first. */
  differences: PairwiseDifference[];
  ownFailures: OwnFailure[];
}

/**
 * Computes profiles from counts. Per mechanism, one test across the models (exact where feasible, else chi-square),
 * corrected for the number of mechanisms tested; for a mechanism found to differ, each pair of models is tested with
 * Fisher's exact test, corrected for the number of pairs (with two models the pair is the mechanism's test). Testing
 * pairs only behind a significant overall test keeps the chance of any false finding at `alpha` under Holm.
 */
export function buildProfiles(
  counts: readonly ModelCounts[],
  options: { alpha?: number; correction?: Correction } = {},
): ModelProfiles {
  const alpha = options.alpha ?? 0.05;
  const correction = options.correction ?? 'holm';
  const adjust = correction === 'holm' ? holmAdjust : benjaminiHochbergAdjust;
  const sorted = [...counts].sort((left, right) => left.model.localeCompare(right.model));
  for (const model of sorted) {
    for (const [mechanism, runs] of Object.entries(model.mechanismRuns)) {
      if (runs > model.failedRuns) {
        throw new SystemError(
          `Model ${model.model} has ${runs} failed runs with ${mechanism} but only ${model.failedRuns} failed runs: the detected_mechanisms view and the runs table disagree; run \`selfharness rebuild\`.`,
        );
      }
    }
  }
  const mechanisms = [
    ...new Set(
      sorted.flatMap((model) =>
        Object.entries(model.mechanismRuns)
          .filter(([, runs]) => runs > 0)
          .map(([mechanism]) => mechanism),
      ),
    ),
  ].sort();
  const runsWith = (model: ModelCounts, mechanism: string) => model.mechanismRuns[mechanism] ?? 0;

  const models: ModelProfile[] = sorted.map((model) => ({
    model: model.model,
    validRuns: model.validRuns,
    failedRuns: model.failedRuns,
    mechanisms: mechanisms.map((mechanism) => {
      const interval = wilsonInterval(runsWith(model, mechanism), model.failedRuns);
      return {
        mechanism,
        runs: runsWith(model, mechanism),
        rate: interval.estimate,
        low: interval.low,
        high: interval.high,
      };
    }),
  }));

  const compared = sorted.filter((model) => model.failedRuns > 0);
  if (compared.length < 2) {
    return { alpha, correction, mechanisms, models, comparisons: [], differences: [], ownFailures: [] };
  }
  const overall = mechanisms.map((mechanism) =>
    proportionsTest(
      compared.map((model) => runsWith(model, mechanism)),
      compared.map((model) => model.failedRuns),
    ),
  );
  const adjustedOverall = adjust(overall.map((test) => test.pValue));
  const comparisons: MechanismComparison[] = mechanisms.map((mechanism, index) => {
    const test = overall[index] as TestResult;
    const adjustedPValue = adjustedOverall[index] ?? 1;
    const significant = adjustedPValue < alpha;
    const pairs: PairwiseDifference[] = [];
    if (significant) {
      const raw: Omit<PairwiseDifference, 'adjustedPValue' | 'significant'>[] = [];
      for (let first = 0; first < compared.length; first++) {
        for (let second = first + 1; second < compared.length; second++) {
          raw.push(
            comparePair(
              mechanism,
              compared[first] as ModelCounts,
              compared[second] as ModelCounts,
              compared.length === 2 ? test : undefined,
            ),
          );
        }
      }
      const adjustedPairs = compared.length === 2 ? [adjustedPValue] : adjust(raw.map((pair) => pair.pValue));
      raw.forEach((pair, pairIndex) => {
        const adjusted = adjustedPairs[pairIndex] ?? 1;
        pairs.push({ ...pair, adjustedPValue: adjusted, significant: adjusted < alpha });
      });
    }
    return { mechanism, method: test.method, pValue: test.pValue, adjustedPValue, significant, pairs };
  });

  const differences = comparisons
    .flatMap((comparison) => comparison.pairs.filter((pair) => pair.significant))
    .sort((left, right) => right.difference - left.difference || left.mechanism.localeCompare(right.mechanism));
  const ownFailures: OwnFailure[] = [];
  for (const comparison of comparisons.filter((candidate) => candidate.significant)) {
    for (const model of compared) {
      const others = compared.filter((other) => other !== model);
      const beatsAll = others.every((other) =>
        comparison.pairs.some((pair) => pair.significant && pair.higher === model.model && pair.lower === other.model),
      );
      if (!beatsAll) continue;
      const rateOf = (entry: ModelCounts) => runsWith(entry, comparison.mechanism) / entry.failedRuns;
      const next = others.reduce((best, other) => (rateOf(other) > rateOf(best) ? other : best));
      ownFailures.push({
        model: model.model,
        mechanism: comparison.mechanism,
        rate: rateOf(model),
        nextRate: rateOf(next),
        nextModel: next.model,
      });
    }
  }
  ownFailures.sort((left, right) => left.model.localeCompare(right.model) || right.rate - left.rate);
  return { alpha, correction, mechanisms, models, comparisons, differences, ownFailures };
}

function comparePair(
  mechanism: string,
  first: ModelCounts,
  second: ModelCounts,
  knownTest: TestResult | undefined,
): Omit<PairwiseDifference, 'adjustedPValue' | 'significant'> {
  const runsOf = (model: ModelCounts) => model.mechanismRuns[mechanism] ?? 0;
  const firstRate = runsOf(first) / first.failedRuns;
  const secondRate = runsOf(second) / second.failedRuns;
  const [higher, lower] = firstRate >= secondRate ? [first, second] : [second, first];
  const interval = rateDifferenceInterval(runsOf(higher), higher.failedRuns, runsOf(lower), lower.failedRuns);
  const test =
    knownTest ??
    fisherExactTest([
      [runsOf(first), first.failedRuns - runsOf(first)],
      [runsOf(second), second.failedRuns - runsOf(second)],
    ]);
  return {
    mechanism,
    higher: higher.model,
    lower: lower.model,
    higherRate: runsOf(higher) / higher.failedRuns,
    lowerRate: runsOf(lower) / lower.failedRuns,
    difference: interval.estimate,
    differenceLow: interval.low,
    differenceHigh: interval.high,
    pValue: test.pValue,
  };
}

/** The label of runs whose source names no model. */
export const NO_MODEL = '(no model)';

const MODEL_RUN_COUNTS = `
SELECT coalesce(model, '${NO_MODEL}') AS model,
       count(*) FILTER (WHERE outcome <> 'invalid') AS valid_runs,
       count(*) FILTER (WHERE outcome = 'failed') AS failed_runs
FROM runs WHERE true /* filters */
GROUP BY 1`;

const MODEL_MECHANISM_COUNTS = `
SELECT coalesce(model, '${NO_MODEL}') AS model, mechanism, count(DISTINCT run_id) AS runs
FROM detected_mechanisms WHERE true /* filters */
GROUP BY ALL`;

/**
 * Reads the counts from the log and computes the profiles. Failed runs come from `runs` (outcome `failed`), mechanism
 * hits from the `detected_mechanisms` view (failed valid runs only), so every number can be recomputed in SQL.
 * Without `models`, every model with failed runs is compared. Works on a log opened read-only too (the views are
 * then made for this connection).
 */
export async function computeProfiles(log: EventLog, options: ProfileOptions = {}): Promise<ModelProfiles> {
  await ensureDetectedMechanisms(log);
  const { clause, values } = filters(options);
  const runRows = await log.query<{ model: string; valid_runs: bigint; failed_runs: bigint }>(
    MODEL_RUN_COUNTS.replace('/* filters */', clause),
    values,
  );
  const mechanismRows = await log.query<{ model: string; mechanism: string; runs: bigint }>(
    MODEL_MECHANISM_COUNTS.replace('/* filters */', clause),
    values,
  );
  const byModel = new Map<string, ModelCounts>();
  for (const row of runRows) {
    byModel.set(row.model, {
      model: row.model,
      validRuns: Number(row.valid_runs),
      failedRuns: Number(row.failed_runs),
      mechanismRuns: {},
    });
  }
  for (const row of mechanismRows) {
    const model = byModel.get(row.model);
    if (model) model.mechanismRuns[row.mechanism] = Number(row.runs);
  }
  let chosen: ModelCounts[];
  if (options.models && options.models.length > 0) {
    const unknown = options.models.filter((model) => !byModel.has(model));
    if (unknown.length > 0) {
      const known = [...byModel.keys()].sort();
      throw new UserError(
        `No runs of model${unknown.length === 1 ? '' : 's'} ${unknown.join(', ')}${options.split || options.dataset ? ' in this split/dataset' : ''}. Models in the log: ${known.length > 0 ? known.join(', ') : '(none)'}.`,
      );
    }
    chosen = options.models.map((model) => byModel.get(model) as ModelCounts);
  } else {
    chosen = [...byModel.values()].filter((model) => model.failedRuns > 0);
  }
  return buildProfiles(chosen, options);
}

function filters(options: ProfileOptions): { clause: string; values: string[] } {
  const conditions: string[] = [];
  const values: string[] = [];
  if (options.split !== undefined) {
    values.push(options.split);
    conditions.push(`split = $${values.length}`);
  }
  if (options.dataset !== undefined) {
    values.push(options.dataset);
    conditions.push(`dataset = $${values.length}`);
  }
  return { clause: conditions.map((condition) => ` AND ${condition}`).join(''), values };
}

async function ensureDetectedMechanisms(log: EventLog): Promise<void> {
  await prepareAnalytics(log.database);
  const [view] = await log.query<{ n: bigint }>(
    "SELECT count(*) AS n FROM duckdb_views() WHERE view_name = 'detected_mechanisms'",
  );
  if (Number(view?.n ?? 0) === 0) {
    throw new SystemError(
      `Database ${log.database.path} has no detected_mechanisms view, which profiles are computed from; this selfharness cannot install it.`,
    );
  }
}
