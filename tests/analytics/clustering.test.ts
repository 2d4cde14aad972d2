import { describe, expect, it } from 'vitest';
import {
  applySupportRule,
  clusterByKMeans,
  type Failure,
  groupByKMeans,
  groupBySignature,
  meanSilhouette,
  signatureOf,
} from '../../analytics/clustering.js';
import { seededRandom } from '../../core/index.js';

/** Points around `centres`, `perCentre` each, with seeded noise: a data set whose right k is known. */
function blobs(centres: readonly number[][], perCentre: number, spread: number, seed: number): number[][] {
  const random = seededRandom(seed);
  return centres.flatMap((centre) =>
    Array.from({ length: perCentre }, () => centre.map((value) => value + (random() - 0.5) * spread)),
  );
}

function failure(
  runId: string,
  task: string,
  mechanism = 'repeated-failed-command',
  extra: Partial<Failure> = {},
): Failure {
  return {
    runId,
    mechanism,
    task,
    model: 'model-a',
    firstStep: 1,
    evidenceSteps: [1],
    excerpt: `${mechanism} in ${runId}`,
    calls: [],
    ...extra,
  };
}

describe('clusterByKMeans', () => {
  const four = blobs(
    [
      [0, 0, 0],
      [10, 0, 0],
      [0, 10, 0],
      [0, 0, 10],
    ],
    15,
    1,
    7,
  );

  it('chooses k from the data: four separated blobs give k = 4 with each blob in one cluster', () => {
    const result = clusterByKMeans(four, { seed: 1 });
    expect(result.k).toBe(4);
    expect(result.silhouettes.map((entry) => entry.k)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const best = Math.max(...result.silhouettes.map((entry) => entry.silhouette));
    expect(result.silhouettes.find((entry) => entry.k === 4)?.silhouette).toBe(best);
    for (let blob = 0; blob < 4; blob++) {
      const labels = new Set(result.assignments.slice(blob * 15, blob * 15 + 15));
      expect(labels.size).toBe(1);
    }
    expect(new Set(result.assignments).size).toBe(4);
  });

  it('chooses two clusters for two blobs', () => {
    const two = blobs(
      [
        [0, 0],
        [5, 5],
      ],
      20,
      0.5,
      3,
    );
    expect(clusterByKMeans(two, { seed: 9 }).k).toBe(2);
  });

  it('gives identical clusters for the same input and seed', () => {
    const noisy = blobs(
      [
        [0, 0, 0, 0],
        [1, 1, 0, 0],
        [0, 1, 1, 0],
      ],
      40,
      1.6,
      11,
    );
    const first = clusterByKMeans(noisy, { seed: 42 });
    const second = clusterByKMeans(
      noisy.map((point) => [...point]),
      { seed: 42 },
    );
    expect(second).toEqual(first);
  });

  it('chooses k on a seeded sample when there are more points than the sample size', () => {
    const many = blobs(
      [
        [0, 0],
        [8, 8],
        [-8, 8],
      ],
      400,
      1,
      5,
    );
    const first = clusterByKMeans(many, { seed: 3, sampleSize: 200 });
    expect(first.k).toBe(3);
    expect(first.assignments).toHaveLength(1200);
    expect(clusterByKMeans(many, { seed: 3, sampleSize: 200 })).toEqual(first);
  });

  it('puts everything in one cluster when there are fewer than three points', () => {
    expect(clusterByKMeans([[1, 2]], { seed: 1 })).toMatchObject({ k: 1, assignments: [0], silhouettes: [] });
    expect(clusterByKMeans([], { seed: 1 })).toMatchObject({ k: 0, assignments: [] });
  });

  it('never tries more clusters than points allow', () => {
    const result = clusterByKMeans(
      [
        [0, 0],
        [0, 1],
        [9, 9],
        [9, 8],
      ],
      { seed: 1 },
    );
    expect(result.silhouettes.map((entry) => entry.k)).toEqual([2, 3]);
    expect(result.k).toBe(2);
  });
});

describe('meanSilhouette', () => {
  it('is near 1 for tight, far-apart clusters and negative for a labelling that mixes them', () => {
    const points = [
      [0, 0],
      [0, 0.1],
      [10, 10],
      [10, 10.1],
    ];
    const matrix = points.map((left) =>
      Float64Array.from(points.map((right) => Math.hypot(left[0]! - right[0]!, left[1]! - right[1]!))),
    );
    expect(meanSilhouette(matrix, [0, 0, 1, 1], 2)).toBeGreaterThan(0.98);
    expect(meanSilhouette(matrix, [0, 1, 0, 1], 2)).toBeLessThan(0);
  });
});

describe('groupByKMeans', () => {
  it("maps failures that share a text onto one point and keeps each failure in its point's cluster", () => {
    const points = [
      [0, 0],
      [0.1, 0],
      [10, 10],
      [10, 10.1],
    ];
    const pointOf = [0, 0, 1, 2, 3, 3, 3];
    const { groups, clustering } = groupByKMeans(pointOf.length, pointOf, points, { seed: 1 });
    expect(clustering.k).toBe(2);
    const groupOf = (failureIndex: number) => groups.findIndex((group) => group.members.includes(failureIndex));
    expect(groupOf(0)).toBe(groupOf(2));
    expect(groupOf(3)).toBe(groupOf(6));
    expect(groupOf(0)).not.toBe(groupOf(3));
    expect(groups.flatMap((group) => group.members).sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(groups.every((group) => group.distances?.length === group.members.length)).toBe(true);
  });
});

describe('signature grouping', () => {
  it('groups by mechanism, and by terminal cause and criticality where a diagnosis exists', () => {
    const diagnosed = (runId: string, cause: string) =>
      failure(runId, 't1', 'budget-exhaustion', {
        diagnosis: { terminalCause: cause, criticality: 'root-cause', mechanism: 'explores forever', reasoning: '' },
      });
    const failures = [
      failure('r1', 't1'),
      failure('r2', 't2'),
      diagnosed('r3', 'Cost limit reached'),
      diagnosed('r4', 'cost  limit reached'),
      diagnosed('r5', 'Wrong file edited'),
    ];
    expect(signatureOf(failures[2]!)).toBe('budget-exhaustion | cost limit reached | root-cause');
    const groups = groupBySignature(failures);
    expect(groups.map((group) => [group.key, group.members])).toEqual([
      ['budget-exhaustion | cost limit reached | root-cause', [2, 3]],
      ['budget-exhaustion | wrong file edited | root-cause', [4]],
      ['repeated-failed-command', [0, 1]],
    ]);
  });
});

describe('the support rule: at least 2 runs across at least 2 tasks', () => {
  const failures = [
    failure('r1', 't1'),
    failure('r2', 't2'),
    failure('r3', 't1', 'tool-call-loop'),
    failure('r4', 't1', 'tool-call-loop'),
    failure('r5', 't3', 'missing-dependency'),
    failure('r5', 't3', 'lost-environment-state'),
  ];
  const groups = [
    { key: 'two runs, two tasks', members: [0, 1] },
    { key: 'two runs, one task', members: [2, 3] },
    { key: 'one run, one task', members: [4, 5] },
  ];

  it('keeps only groups that recur across runs and tasks, and counts what it drops', () => {
    const { kept, dropped } = applySupportRule(groups, failures);
    expect(kept.map((group) => group.key)).toEqual(['two runs, two tasks']);
    expect(dropped).toEqual({ groups: 2, failures: 4 });
  });

  it('takes other thresholds', () => {
    const { kept } = applySupportRule(groups, failures, { minRuns: 2, minTasks: 1 });
    expect(kept.map((group) => group.key)).toEqual(['two runs, two tasks', 'two runs, one task']);
  });
});
