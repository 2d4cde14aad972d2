import type { TrialResult } from './runner.js';

/** Pass rates of a batch, per split and overall. Invalid and unfinished trials are shown but never in a rate. */
export interface TrialSummaryRow {
  readonly split: string;
  readonly trials: number;
  readonly passed: number;
  readonly failed: number;
  readonly invalid: number;
  readonly unfinished: number;
  /** passed / (passed + failed); `null` when no trial counted. */
  readonly passRate: number | null;
}

export interface TrialSummary {
  readonly rows: readonly TrialSummaryRow[];
  readonly overall: TrialSummaryRow;
}

function summarize(split: string, results: readonly TrialResult[]): TrialSummaryRow {
  const count = (outcome: TrialResult['outcome']) => results.filter((result) => result.outcome === outcome).length;
  const passed = count('passed');
  const failed = count('failed');
  return {
    split,
    trials: results.length,
    passed,
    failed,
    invalid: count('invalid'),
    unfinished: count('unfinished'),
    passRate: passed + failed === 0 ? null : passed / (passed + failed),
  };
}

/** Summarizes trial results by split (in the order held-in, held-out, sealed, then others) and overall. */
export function summarizeTrials(results: readonly TrialResult[]): TrialSummary {
  const order = ['held-in', 'held-out', 'sealed'];
  const splits = [...new Set(results.map((result) => result.split ?? '(none)'))].sort(
    (a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99) || a.localeCompare(b),
  );
  return {
    rows: splits.map((split) =>
      summarize(
        split,
        results.filter((result) => (result.split ?? '(none)') === split),
      ),
    ),
    overall: summarize('all', results),
  };
}
