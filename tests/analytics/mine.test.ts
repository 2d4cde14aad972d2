import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransformersEmbedder } from '../../analytics/embedding/index.js';
import { failureText, mineWeaknesses } from '../../analytics/mine.js';
import { EventLog, type TraceEvent } from '../../core/index.js';
import { weaknessEvents } from '../support/mining-log.js';
import { CountingEmbedder, writeTinyEmbeddingModel } from '../support/tiny-embedding-model.js';

const folder = mkdtempSync(join(tmpdir(), 'selfharness-mine-'));
const modelFolder = writeTinyEmbeddingModel(join(folder, 'model'));
let log: EventLog;

beforeAll(async () => {
  log = await EventLog.open(join(folder, 'mine.duckdb'));
  await log.appendEvents(weaknessEvents());
});

afterAll(() => {
  log.close();
  rmSync(folder, { recursive: true, force: true });
});

describe('mineWeaknesses in signature mode', () => {
  it('groups detections by mechanism, keeps those over ≥ 2 runs and ≥ 2 tasks, and ranks them', async () => {
    const result = await mineWeaknesses(log, { mode: 'signature' });
    expect(result).toMatchObject({ mode: 'signature', failedRuns: 8, explainedRuns: 8, failures: 8 });
    // The loop of one run on one task is dropped; the invalid run is never mined.
    expect(result.dropped).toEqual({ clusters: 1, failures: 1 });
    expect(result.clusters.map((card) => [card.rank, card.label, card.runIds])).toEqual([
      [1, 'Repeated failed command: `make test`', ['make-1', 'make-2', 'make-3', 'make-4']],
      [2, 'Missing dependency: `python3`', ['numpy-1', 'numpy-2', 'numpy-3']],
    ]);
    const [make, numpy] = result.clusters;
    expect(make).toMatchObject({ taskCount: 4, models: ['model-a', 'model-b'], criticality: 'unknown' });
    expect(make?.preserve).toEqual({
      passingRunCount: 2,
      passingRuns: [
        { runId: 'pass-1', task: 't1', model: 'model-a' },
        { runId: 'pass-2', task: 't2', model: 'model-a' },
      ],
    });
    expect(make?.evidence).toHaveLength(4);
    expect(make?.evidence[0]).toMatchObject({
      runId: 'make-1',
      steps: [2, 3, 4],
      calls: [
        { step: 2, command: 'make test', exitCode: 2, output: 'make: *** [test] Error 1' },
        { step: 3, command: 'make test' },
        { step: 4, command: 'make test' },
      ],
    });
    expect(numpy?.evidence.map((item) => item.excerpt)).toEqual(
      Array(3).fill("ModuleNotFoundError: No module named 'numpy'"),
    );
  });

  it('cites steps that exist in the steps and tool_calls tables', async () => {
    const result = await mineWeaknesses(log, { mode: 'signature', store: false });
    for (const evidence of result.clusters.flatMap((card) => card.evidence)) {
      for (const step of evidence.steps) {
        const rows = await log.query(
          'SELECT 1 FROM steps s JOIN tool_calls t USING (run_id, step) WHERE s.run_id = $1 AND s.step = $2',
          [evidence.runId, step],
        );
        expect(rows.length, `${evidence.runId} step ${step}`).toBeGreaterThan(0);
      }
    }
  });

  it('stores the cards and their members in the mining tables, replacing the previous result', async () => {
    const first = await mineWeaknesses(log, { mode: 'signature' });
    await mineWeaknesses(log, { mode: 'signature' });
    const clusters = await log.query<{ cluster_id: string; rank: number; run_count: number; card: string }>(
      'SELECT cluster_id, rank, run_count, card FROM weakness_clusters WHERE mining_id = $1 ORDER BY rank',
      [first.miningId],
    );
    expect(clusters.map((row) => [row.cluster_id, row.rank, row.run_count])).toEqual(
      first.clusters.map((card) => [card.clusterId, card.rank, card.runCount]),
    );
    expect(JSON.parse(clusters[0]?.card ?? '{}')).toEqual(first.clusters[0]);
    const members = await log.query<{ cluster_id: string; n: bigint }>(
      'SELECT cluster_id, count(*) AS n FROM weakness_cluster_members WHERE mining_id = $1 GROUP BY 1 ORDER BY 2 DESC',
      [first.miningId],
    );
    expect(members.map((row) => [row.cluster_id, Number(row.n)])).toEqual([
      [first.clusters[0]?.clusterId, 4],
      [first.clusters[1]?.clusterId, 3],
    ]);
  });

  it('mines one model or split alone', async () => {
    const result = await mineWeaknesses(log, { mode: 'signature', model: 'model-b', store: false });
    expect(result.failedRuns).toBe(2);
    expect(result.clusters.map((card) => [card.runIds, card.models])).toEqual([[['make-2', 'make-4'], ['model-b']]]);
    expect(result.dropped).toEqual({ clusters: 0, failures: 0 });
    expect(result.clusters[0]?.preserve.passingRunCount).toBe(0);
    const none = await mineWeaknesses(log, { mode: 'signature', split: 'held-out', store: false });
    expect(none.failedRuns).toBe(0);
  });
});

describe('mineWeaknesses in k-means mode', () => {
  it('embeds each distinct failure text once, and nothing on the second run, with identical clusters', async () => {
    const embedder = new CountingEmbedder(new TransformersEmbedder(modelFolder));
    const first = await mineWeaknesses(log, { mode: 'kmeans', embedder, seed: 7 });
    // Runs of one pattern read the same after masking, so 8 failures make 3 distinct texts.
    expect(first.embedding).toEqual({ distinct: 3, embedded: 3, cached: 0 });
    expect(embedder.embeddedTexts).toBe(3);
    const second = await mineWeaknesses(log, { mode: 'kmeans', embedder, seed: 7 });
    expect(second.embedding).toEqual({ distinct: 3, embedded: 0, cached: 3 });
    expect(embedder.embeddedTexts).toBe(3);
    expect(second.clusters).toEqual(first.clusters);
    expect(second.miningId).toBe(first.miningId);
    await embedder.close();
  });

  it('places every failure in exactly one kept or dropped cluster, each kept one over ≥ 2 runs and ≥ 2 tasks', async () => {
    const embedder = new TransformersEmbedder(modelFolder);
    const result = await mineWeaknesses(log, { mode: 'kmeans', embedder, seed: 3 });
    expect(result.k).toBe(2);
    const kept = result.clusters.reduce((total, card) => total + card.failureCount, 0);
    expect(kept + result.dropped.failures).toBe(result.failures);
    for (const card of result.clusters) {
      expect(card.runCount).toBeGreaterThanOrEqual(2);
      expect(card.taskCount).toBeGreaterThanOrEqual(2);
      expect(card.evidence.length).toBeGreaterThanOrEqual(Math.min(3, card.runCount));
      expect(card.evidence.length).toBeLessThanOrEqual(5);
    }
    const numpy = result.clusters.find((card) => card.runIds.includes('numpy-1'));
    expect(numpy?.runIds).toEqual(['numpy-1', 'numpy-2', 'numpy-3']);
    await embedder.close();
  });

  it('uses diagnoses: their criticality ranks, and their terminal cause splits signatures', async () => {
    const diagnosisLog = await EventLog.open(join(folder, 'diagnosed.duckdb'));
    try {
      const diagnoses: TraceEvent[] = ['numpy-1', 'numpy-2', 'numpy-3', 'make-1'].map((runId) => ({
        id: `${runId}#diagnosis`,
        runId,
        type: 'diagnosis-create',
        data: {
          promptVersion: 'v1',
          model: 'judge',
          terminalCause: runId === 'make-1' ? 'tests fail after edit' : 'numpy not installed',
          criticality: 'root-cause',
          mechanism: 'runs code without installing its dependencies',
          evidenceSteps: [2],
          reasoning: 'The script imports numpy, which the environment lacks.',
        },
      }));
      await diagnosisLog.appendEvents([...weaknessEvents(), ...diagnoses]);
      const result = await mineWeaknesses(diagnosisLog, { mode: 'signature', store: false });
      expect(result.clusters.map((card) => [card.signature, card.criticality, card.runIds])).toEqual([
        ['missing-dependency | numpy not installed | root-cause', 'root-cause', ['numpy-1', 'numpy-2', 'numpy-3']],
        ['repeated-failed-command', 'unknown', ['make-2', 'make-3', 'make-4']],
      ]);
      expect(result.clusters[0]?.label).toBe('Missing dependency: numpy not installed');
      expect(result.dropped).toEqual({ clusters: 2, failures: 2 });
    } finally {
      diagnosisLog.close();
    }
  });
});

describe('failureText', () => {
  it('says the mechanism, the excerpt, the failing commands and the diagnosis, with numbers and ids masked', () => {
    const text = failureText({
      runId: 'r',
      mechanism: 'missing-dependency',
      task: 't',
      model: 'm',
      firstStep: 3,
      evidenceSteps: [3],
      excerpt: '/bin/bash: line 4044: mvn: command not found',
      calls: [{ step: 3, tool: 'shell', command: 'mvn test', exitCode: 127, output: 'mvn: command not found' }],
      diagnosis: {
        terminalCause: 'no build tool',
        criticality: 'root-cause',
        mechanism: 'assumes maven',
        reasoning: 'commit 3f2a9c1d7e',
      },
    });
    expect(text).toBe(
      [
        'Missing dependency.',
        '/bin/bash: line <n>: mvn: command not found',
        '$ mvn test (exit <n>): mvn: command not found',
        'Terminal cause: no build tool. Mechanism: assumes maven.',
        'commit <id>',
      ].join('\n'),
    );
  });
});
