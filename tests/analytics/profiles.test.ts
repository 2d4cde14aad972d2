import { describe, expect, it } from 'vitest';
import { buildProfiles, computeProfiles, type ModelCounts } from '../../analytics/profiles.js';
import { EventLog, type TraceEvent } from '../../core/index.js';
import { sampleRun } from '../support/events.js';

const modelA: ModelCounts = {
  model: 'model-a',
  validRuns: 50,
  failedRuns: 40,
  mechanismRuns: { 'tool-call-loop': 20, 'missing-dependency': 5 },
};
const modelB: ModelCounts = {
  model: 'model-b',
  validRuns: 45,
  failedRuns: 40,
  mechanismRuns: { 'tool-call-loop': 2, 'missing-dependency': 6 },
};
const modelC: ModelCounts = {
  model: 'model-c',
  validRuns: 60,
  failedRuns: 30,
  mechanismRuns: { 'tool-call-loop': 3, 'missing-dependency': 4 },
};

describe('buildProfiles', () => {
  it('gives each model its rates with Wilson intervals, and finds the one mechanism two models differ on', () => {
    const profiles = buildProfiles([modelB, modelA]);
    expect(profiles.mechanisms).toEqual(['missing-dependency', 'tool-call-loop']);
    expect(profiles.models.map((model) => [model.model, model.validRuns, model.failedRuns])).toEqual([
      ['model-a', 50, 40],
      ['model-b', 45, 40],
    ]);
    const loopA = profiles.models[0]?.mechanisms.find((entry) => entry.mechanism === 'tool-call-loop');
    expect(loopA?.runs).toBe(20);
    expect(loopA?.rate).toBe(0.5);
    // Wilson 95% interval of 20/40 (the score formula, evaluated independently in Python).
    expect(loopA?.low).toBeCloseTo(0.3519953, 6);
    expect(loopA?.high).toBeCloseTo(0.6480047, 6);

    const loop = profiles.comparisons.find((comparison) => comparison.mechanism === 'tool-call-loop');
    // scipy.stats.fisher_exact([[20, 20], [2, 38]]); Holm over two mechanisms doubles the smaller p-value.
    expect(loop).toMatchObject({ method: 'fisher-exact', significant: true });
    expect(loop?.pValue).toBeCloseTo(8.33444281883226e-6, 12);
    expect(loop?.adjustedPValue).toBeCloseTo(2 * 8.33444281883226e-6, 12);
    const dependency = profiles.comparisons.find((comparison) => comparison.mechanism === 'missing-dependency');
    expect(dependency).toMatchObject({ significant: false, pairs: [] });
    expect(dependency?.pValue).toBeCloseTo(1, 10);

    expect(profiles.differences).toHaveLength(1);
    expect(profiles.differences[0]).toMatchObject({
      mechanism: 'tool-call-loop',
      higher: 'model-a',
      lower: 'model-b',
      higherRate: 0.5,
      lowerRate: 0.05,
    });
    expect(profiles.differences[0]?.difference).toBeCloseTo(0.45, 12);
    expect(profiles.differences[0]?.differenceLow).toBeGreaterThan(0);
    expect(profiles.ownFailures).toEqual([
      { model: 'model-a', mechanism: 'tool-call-loop', rate: 0.5, nextRate: 0.05, nextModel: 'model-b' },
    ]);
  });

  it('tests three models exactly, then each pair, and names the failure that is one model’s own', () => {
    const profiles = buildProfiles([modelA, modelB, modelC]);
    const loop = profiles.comparisons.find((comparison) => comparison.mechanism === 'tool-call-loop');
    // Freeman–Halton exact p-value by enumerating every 2×3 table with these margins.
    expect(loop?.method).toBe('freeman-halton-exact');
    expect(loop?.pValue).toBeCloseTo(1.442739955993437e-6, 12);
    expect(loop?.adjustedPValue).toBeCloseTo(2 * 1.442739955993437e-6, 12);
    // Pairwise Fisher p-values (scipy) with Holm over the three pairs: 3p, max(…, 2p), max(…, p).
    const pair = (higher: string, lower: string) =>
      loop?.pairs.find((candidate) => candidate.higher === higher && candidate.lower === lower);
    expect(pair('model-a', 'model-b')?.adjustedPValue).toBeCloseTo(3 * 8.33444281883226e-6, 12);
    expect(pair('model-a', 'model-c')?.adjustedPValue).toBeCloseTo(2 * 0.0006375012862252581, 12);
    expect(pair('model-c', 'model-b')?.adjustedPValue).toBeCloseTo(0.6448983699432225, 10);
    expect(pair('model-c', 'model-b')?.significant).toBe(false);
    expect(profiles.ownFailures).toEqual([
      { model: 'model-a', mechanism: 'tool-call-loop', rate: 0.5, nextRate: 0.1, nextModel: 'model-c' },
    ]);
  });

  it('corrects by Benjamini–Hochberg on request, and refuses counts that contradict each other', () => {
    const profiles = buildProfiles([modelA, modelB], { correction: 'bh' });
    const loop = profiles.comparisons.find((comparison) => comparison.mechanism === 'tool-call-loop');
    expect(loop?.adjustedPValue).toBeCloseTo(2 * 8.33444281883226e-6, 12);
    expect(profiles.correction).toBe('bh');
    expect(() => buildProfiles([{ ...modelA, mechanismRuns: { 'tool-call-loop': 41 } }])).toThrow(
      /model-a has 41 failed runs with tool-call-loop but only 40 failed runs/,
    );
  });

  it('compares nothing with fewer than two models that failed', () => {
    const profiles = buildProfiles([modelA, { model: 'model-d', validRuns: 10, failedRuns: 0, mechanismRuns: {} }]);
    expect(profiles.comparisons).toEqual([]);
    expect(profiles.models[1]?.mechanisms.every((entry) => entry.low === 0 && entry.high === 1)).toBe(true);
  });
});

describe('computeProfiles on a log', () => {
  /** A failed run whose end names a cost limit, a failed run without, passes and an invalid run. */
  function runsOf(model: string, costLimited: number, otherFailed: number): TraceEvent[] {
    const events: TraceEvent[] = [];
    const withModel = (runId: string, outcome: 'passed' | 'failed' | 'invalid', reason?: string) =>
      sampleRun(runId, outcome).map((event) => {
        if (event.type === 'run-start') return { ...event, data: { ...event.data, model, split: 'held-in' } };
        if (event.type === 'run-end' && reason) return { ...event, data: { ...event.data, failureReason: reason } };
        return event;
      });
    for (let index = 0; index < costLimited; index++)
      events.push(...withModel(`${model}-cost-${index}`, 'failed', 'exit_cost'));
    for (let index = 0; index < otherFailed; index++) events.push(...withModel(`${model}-fail-${index}`, 'failed'));
    events.push(...withModel(`${model}-pass`, 'passed'), ...withModel(`${model}-invalid`, 'invalid', 'exit_cost'));
    return events;
  }

  it('counts from runs and detected_mechanisms, exactly as SQL over them does', async () => {
    const log = await EventLog.open(':memory:');
    try {
      await log.appendEvents([...runsOf('model-a', 6, 1), ...runsOf('model-b', 1, 6)]);
      const profiles = await computeProfiles(log);
      expect(profiles.models.map((model) => [model.model, model.validRuns, model.failedRuns])).toEqual([
        ['model-a', 8, 7],
        ['model-b', 8, 7],
      ]);
      const bySql = await log.query<{ model: string; mechanism: string; runs: bigint }>(
        'SELECT model, mechanism, count(DISTINCT run_id) AS runs FROM detected_mechanisms GROUP BY ALL ORDER BY ALL',
      );
      expect(bySql.length).toBeGreaterThan(0);
      for (const row of bySql) {
        const entry = profiles.models
          .find((model) => model.model === row.model)
          ?.mechanisms.find((candidate) => candidate.mechanism === row.mechanism);
        expect(entry?.runs).toBe(Number(row.runs));
      }
      // The cost-limited runs are budget exhaustion; the invalid ones are never mined.
      const budget = profiles.models.map(
        (model) => model.mechanisms.find((entry) => entry.mechanism === 'budget-exhaustion')?.runs,
      );
      expect(budget).toEqual([6, 1]);

      await expect(computeProfiles(log, { models: ['model-a', 'model-z'] })).rejects.toThrow(
        'No runs of model model-z. Models in the log: model-a, model-b.',
      );
      expect((await computeProfiles(log, { split: 'held-out' })).models).toEqual([]);
    } finally {
      log.close();
    }
  });
});
