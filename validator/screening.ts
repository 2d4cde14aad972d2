import { median } from '../analytics/statistics.js';
import type { LoggedRun } from './logged-run.js';
import type { InterventionKind, ShadowTrace } from './replay.js';

/**
 * From shadow traces to a screening verdict. A candidate is only worth fresh trials if it would have acted on the
 * failures it targets, preferably before the failure showed, and stays quiet on runs that passed. Pure functions.
 */

/** A failed run of the candidate's target cluster and the step where its failure first showed. */
export interface TargetTrace {
  readonly trace: ShadowTrace;
  /** The failure's first evidence step (from mining); the run's last step when mining named none. */
  readonly firstEvidenceStep?: number;
}

export interface TargetSummary {
  readonly runs: number;
  readonly fired: number;
  /** Of the runs fired on, those where the first intervention came at or before the failure's first evidence. */
  readonly atOrBeforeEvidence: number;
  /** Median of (first evidence step − first intervention step) over the runs fired on with a known evidence step. */
  readonly medianLeadSteps?: number;
  readonly perRun: readonly {
    readonly runId: string;
    readonly firstInterventionStep?: number;
    readonly firstEvidenceStep?: number;
    readonly leadSteps?: number;
    readonly kinds: readonly InterventionKind[];
  }[];
}

export interface FiringSummary {
  readonly runs: number;
  readonly fired: number;
  /** Fired / runs, 0 when there are no runs. */
  readonly rate: number;
}

export interface ReplaySummary {
  readonly target: TargetSummary;
  /** Passing runs of the tasks the target runs attempted. */
  readonly passingSameTasks: FiringSummary;
  /** All passing runs replayed (same models as the targets). */
  readonly passingAll: FiringSummary;
  /** Interventions per middleware (rules included) on target and on passing runs. */
  readonly byMiddleware: Readonly<Record<string, { readonly target: number; readonly passing: number }>>;
}

export interface ScreeningOptions {
  /** A candidate firing on more than this share of passing runs is screened out (default 0.5). */
  readonly maxPassingFireRate?: number;
  /** The same-task rate counts only with at least this many same-task passing runs (default 2). */
  readonly minSameTaskRuns?: number;
}

export interface ScreeningVerdict {
  readonly screenedOut: boolean;
  readonly reasons: readonly string[];
  readonly metrics: Record<string, unknown>;
}

function firing(traces: readonly ShadowTrace[]): FiringSummary {
  const fired = traces.filter((trace) => trace.interventions.length > 0).length;
  return { runs: traces.length, fired, rate: traces.length === 0 ? 0 : fired / traces.length };
}

/** The last step of a logged run, the evidence step of a failure that only shows at the end. */
export function lastStep(run: LoggedRun): number {
  return run.turns.at(-1)?.step ?? 0;
}

/** Summarises the traces of a candidate on its target failures and on passing runs. */
export function summarizeReplay(
  targets: readonly TargetTrace[],
  passing: readonly ShadowTrace[],
  sameTasks: ReadonlySet<string>,
): ReplaySummary {
  const perRun = targets.map(({ trace, firstEvidenceStep }) => {
    const leadSteps =
      trace.firstStep !== undefined && firstEvidenceStep !== undefined
        ? firstEvidenceStep - trace.firstStep
        : undefined;
    return {
      runId: trace.runId,
      ...(trace.firstStep !== undefined ? { firstInterventionStep: trace.firstStep } : {}),
      ...(firstEvidenceStep !== undefined ? { firstEvidenceStep } : {}),
      ...(leadSteps !== undefined ? { leadSteps } : {}),
      kinds: [...new Set(trace.interventions.map((item) => item.kind))],
    };
  });
  const leads = perRun.flatMap((run) => (run.leadSteps !== undefined ? [run.leadSteps] : []));
  const byMiddleware: Record<string, { target: number; passing: number }> = {};
  const count = (traces: readonly ShadowTrace[], field: 'target' | 'passing') => {
    for (const trace of traces)
      for (const item of trace.interventions) {
        const entry = byMiddleware[item.middleware] ?? { target: 0, passing: 0 };
        entry[field] += 1;
        byMiddleware[item.middleware] = entry;
      }
  };
  count(
    targets.map((target) => target.trace),
    'target',
  );
  count(passing, 'passing');
  const medianLeadSteps = median(leads);
  return {
    target: {
      runs: targets.length,
      fired: perRun.filter((run) => run.firstInterventionStep !== undefined).length,
      atOrBeforeEvidence: leads.filter((lead) => lead >= 0).length,
      ...(medianLeadSteps !== undefined ? { medianLeadSteps } : {}),
      perRun,
    },
    passingSameTasks: firing(passing.filter((trace) => sameTasks.has(trace.task))),
    passingAll: firing(passing),
    byMiddleware,
  };
}

const percent = (rate: number) => `${(rate * 100).toFixed(0)}%`;

/**
 * Screens a candidate on its replay summary: out when it never acts on its target failures (or there are none to
 * replay), or when it acts on more than `maxPassingFireRate` of the passing runs (all of them, or those of the same
 * tasks when there are at least `minSameTaskRuns`). The reasons say the numbers.
 */
export function screenReplay(summary: ReplaySummary, options: ScreeningOptions = {}): ScreeningVerdict {
  const threshold = options.maxPassingFireRate ?? 0.5;
  const minSameTaskRuns = options.minSameTaskRuns ?? 2;
  const { target, passingAll, passingSameTasks } = summary;
  const reasons: string[] = [];
  let screenedOut = false;
  if (target.runs === 0) {
    screenedOut = true;
    reasons.push('No failed runs of the target cluster are in the log, so replay cannot show the edit would act.');
  } else if (target.fired === 0) {
    screenedOut = true;
    reasons.push(`Never fires on its target: 0 of ${target.runs} failed runs of the target cluster.`);
  } else {
    const lead =
      target.medianLeadSteps !== undefined
        ? `; median lead ${target.medianLeadSteps} steps before the failure's first evidence (${target.atOrBeforeEvidence} at or before it)`
        : '';
    reasons.push(
      `Fires on ${target.fired} of ${target.runs} target failures (${percent(target.fired / target.runs)})${lead}.`,
    );
  }
  if (passingAll.runs > 0 && passingAll.rate > threshold) {
    screenedOut = true;
    reasons.push(
      `Fires on most passing runs: ${passingAll.fired} of ${passingAll.runs} (${percent(passingAll.rate)}, limit ${percent(threshold)}).`,
    );
  } else if (passingSameTasks.runs >= minSameTaskRuns && passingSameTasks.rate > threshold) {
    screenedOut = true;
    reasons.push(
      `Fires on most passing runs of the same tasks: ${passingSameTasks.fired} of ${passingSameTasks.runs} (${percent(passingSameTasks.rate)}, limit ${percent(threshold)}).`,
    );
  } else {
    reasons.push(
      `Fires on ${passingAll.fired} of ${passingAll.runs} passing runs (${percent(passingAll.rate)}), ${passingSameTasks.fired} of ${passingSameTasks.runs} of the same tasks.`,
    );
  }
  return {
    screenedOut,
    reasons,
    metrics: {
      targetRuns: target.runs,
      targetFired: target.fired,
      targetAtOrBeforeEvidence: target.atOrBeforeEvidence,
      ...(target.medianLeadSteps !== undefined ? { medianLeadSteps: target.medianLeadSteps } : {}),
      passingRuns: passingAll.runs,
      passingFired: passingAll.fired,
      passingFireRate: passingAll.rate,
      passingSameTaskRuns: passingSameTasks.runs,
      passingSameTaskFired: passingSameTasks.fired,
      passingSameTaskFireRate: passingSameTasks.rate,
      maxPassingFireRate: threshold,
      byMiddleware: summary.byMiddleware,
    },
  };
}
