import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ModelProfiles } from '../../analytics/profiles.js';
import { prepareAnalytics } from '../../analytics/schema.js';
import { EventLog, type TraceEvent } from '../../core/index.js';
import { runCli } from '../support/cli.js';
import { sampleRun } from '../support/events.js';
import { hasSharedTraces, sharedTracesDir, sharedTracesSkipReason } from '../support/shared-traces.js';

/** Failed runs whose end names a cost limit (budget exhaustion), other failed runs, and one passed run per model. */
function runsOf(model: string, costLimited: number, otherFailed: number): TraceEvent[] {
  const events: TraceEvent[] = [];
  const withModel = (runId: string, outcome: 'passed' | 'failed', reason?: string) =>
    sampleRun(runId, outcome).map((event) => {
      if (event.type === 'run-start') return { ...event, data: { ...event.data, model } };
      if (event.type === 'run-end' && reason) return { ...event, data: { ...event.data, failureReason: reason } };
      return event;
    });
  for (let index = 0; index < costLimited; index++)
    events.push(...withModel(`${model}-cost-${index}`, 'failed', 'exit_cost'));
  for (let index = 0; index < otherFailed; index++) events.push(...withModel(`${model}-fail-${index}`, 'failed'));
  events.push(...withModel(`${model}-pass`, 'passed'));
  return events;
}

describe('selfharness profiles', () => {
  let db: string;
  beforeAll(async () => {
    db = join(mkdtempSync(join(tmpdir(), 'selfharness-profiles-')), 'profiles.duckdb');
    const log = await EventLog.open(db);
    try {
      await log.appendEvents([...runsOf('model-a', 14, 1), ...runsOf('model-b', 1, 14)]);
    } finally {
      log.close();
    }
  });

  it('prints a table per model and the failures that are one model’s own', async () => {
    const result = await runCli(['--db', db, 'profiles']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('model-a: 16 valid runs, 15 failed');
    expect(result.stdout).toContain('model-b: 16 valid runs, 15 failed');
    expect(result.stdout).toMatch(/budget-exhaustion\s+14\s+93\.3%\s+70\.2% – 98\.8%/);
    expect(result.stdout).toMatch(/model-a 93\.3% vs model-b 6\.7%: \+86\.7 points/);
    expect(result.stdout).toContain('model-a: budget-exhaustion in 93.3% of its failed runs (next: model-b 6.7%)');
  });

  it('prints JSON for programs, and explains unknown models and bad flags', async () => {
    const json = await runCli(['--db', db, '--json', 'profiles', '--models', 'model-b,model-a', '--correction', 'bh']);
    const profiles = JSON.parse(json.stdout) as ModelProfiles;
    expect(profiles.correction).toBe('bh');
    expect(profiles.models.map((model) => model.model)).toEqual(['model-a', 'model-b']);
    expect(profiles.ownFailures).toEqual([
      { model: 'model-a', mechanism: 'budget-exhaustion', rate: 14 / 15, nextRate: 1 / 15, nextModel: 'model-b' },
    ]);
    const unknown = await runCli(['--db', db, 'profiles', '--models', 'model-a,gpt-9']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim()).toBe('error: No runs of model gpt-9. Models in the log: model-a, model-b.');
    const alpha = await runCli(['--db', db, 'profiles', '--alpha', '5']);
    expect(alpha.stderr.trim()).toBe('error: --alpha must be between 0 and 1, not "5".');
  });
});

const sweModels = ['deepseek-chat-v2', 'doubao-pro-128k', 'gpt-4o-2024-05-13'];

describe.skipIf(!hasSharedTraces)(
  `selfharness profiles on the SWE-agent traces (${hasSharedTraces ? sharedTracesDir : sharedTracesSkipReason})`,
  () => {
    let db: string;
    let profiles: ModelProfiles;

    beforeAll(async () => {
      db = join(mkdtempSync(join(tmpdir(), 'selfharness-profiles-real-')), 'swe.duckdb');
      const ingest = await runCli(['--db', db, 'ingest', join(sharedTracesDir, 'swe-agent-multi-swe-bench-java')]);
      expect(ingest.code).toBe(0);
      const result = await runCli(['--db', db, '--json', 'profiles', '--models', sweModels.join(',')]);
      expect(result.code).toBe(0);
      profiles = JSON.parse(result.stdout);
    }, 120_000);

    it('compares the three models with numbers that SQL over runs and detected_mechanisms gives by hand', async () => {
      expect(profiles.models.map((model) => model.model)).toEqual(sweModels);
      const log = await EventLog.open(db);
      try {
        await prepareAnalytics(log.database);
        const counts = await log.query<{ model: string; valid_runs: bigint; failed_runs: bigint }>(
          `SELECT model, count(*) FILTER (WHERE outcome <> 'invalid') AS valid_runs,
                  count(*) FILTER (WHERE outcome = 'failed') AS failed_runs
           FROM runs WHERE model IN ('deepseek-chat-v2', 'doubao-pro-128k', 'gpt-4o-2024-05-13') GROUP BY model`,
        );
        // Rates and 95% Wilson bounds, written out in SQL; the model comes from `runs`, not from the view.
        const rates = await log.query<{
          model: string;
          mechanism: string;
          k: bigint;
          rate: number;
          low: number;
          high: number;
        }>(
          `WITH failed AS (
             SELECT model, count(*) AS n FROM runs WHERE outcome = 'failed' GROUP BY model
           ), hits AS (
             SELECT r.model, d.mechanism, count(DISTINCT d.run_id) AS k
             FROM detected_mechanisms d JOIN runs r USING (run_id) WHERE r.outcome = 'failed' GROUP BY ALL
           ), z AS (SELECT 1.959963984540054 AS z)
           SELECT hits.model, mechanism, k, k / n AS rate,
                  CASE WHEN k = 0 THEN 0 ELSE (k / n + z * z / (2 * n) - z * sqrt((k / n) * (1 - k / n) / n + z * z / (4 * n * n))) / (1 + z * z / n) END AS low,
                  CASE WHEN k = n THEN 1 ELSE (k / n + z * z / (2 * n) + z * sqrt((k / n) * (1 - k / n) / n + z * z / (4 * n * n))) / (1 + z * z / n) END AS high
           FROM hits JOIN failed USING (model), z
           WHERE hits.model IN ('deepseek-chat-v2', 'doubao-pro-128k', 'gpt-4o-2024-05-13')`,
        );
        for (const row of counts) {
          const model = profiles.models.find((candidate) => candidate.model === row.model);
          expect([model?.validRuns, model?.failedRuns]).toEqual([Number(row.valid_runs), Number(row.failed_runs)]);
        }
        let checked = 0;
        for (const model of profiles.models) {
          for (const entry of model.mechanisms) {
            const row = rates.find(
              (candidate) => candidate.model === model.model && candidate.mechanism === entry.mechanism,
            );
            expect(entry.runs).toBe(Number(row?.k ?? 0));
            if (!row) continue;
            expect(entry.rate).toBeCloseTo(row.rate, 12);
            expect(entry.low).toBeCloseTo(row.low, 12);
            expect(entry.high).toBeCloseTo(row.high, 12);
            checked += 1;
          }
        }
        expect(checked).toBe(rates.length);

        // Each pairwise p-value is Fisher's exact test, summed in SQL over the hypergeometric distribution.
        const pairs = profiles.comparisons.flatMap((comparison) => comparison.pairs);
        expect(pairs.length).toBeGreaterThan(0);
        for (const pair of pairs) {
          const count = (name: string) => {
            const model = profiles.models.find((candidate) => candidate.model === name);
            const entry = model?.mechanisms.find((candidate) => candidate.mechanism === pair.mechanism);
            return { k: entry?.runs ?? 0, n: model?.failedRuns ?? 0 };
          };
          const higher = count(pair.higher);
          const lower = count(pair.lower);
          const [fisher] = await log.query<{ p: number }>(
            `WITH m AS (SELECT $1::INTEGER AS a, $2::INTEGER AS n1, $3::INTEGER AS n2, $1::INTEGER + $4::INTEGER AS k),
             lp AS (
               SELECT x, lgamma(n1 + 1) - lgamma(x + 1) - lgamma(n1 - x + 1)
                       + lgamma(n2 + 1) - lgamma(k - x + 1) - lgamma(n2 - k + x + 1)
                       - (lgamma(n1 + n2 + 1) - lgamma(k + 1) - lgamma(n1 + n2 - k + 1)) AS logp, a
               FROM m, range(greatest(0, k - n2), least(k, n1) + 1) t(x)
             )
             SELECT sum(exp(logp)) FILTER (WHERE logp <= (SELECT logp FROM lp WHERE x = a) + 1e-7) AS p FROM lp`,
            [higher.k, higher.n, lower.n, lower.k],
          );
          expect(pair.pValue).toBeCloseTo(fisher?.p ?? Number.NaN, 10);
        }
      } finally {
        log.close();
      }
    });

    it('shows the set’s real failure modes: cost-limit exhaustion in every model', () => {
      for (const model of profiles.models) {
        const budget = model.mechanisms.find((entry) => entry.mechanism === 'budget-exhaustion');
        expect(budget?.runs).toBeGreaterThan(5);
      }
      expect(profiles.comparisons.some((comparison) => comparison.significant)).toBe(true);
    });
  },
);
