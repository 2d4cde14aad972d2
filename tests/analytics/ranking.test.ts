import { describe, expect, it } from 'vitest';
import type { Failure, FailureGroup } from '../../analytics/clustering.js';
import {
  buildClusterCards,
  clusterCriticality,
  clusterLabel,
  clusterScore,
  commandHead,
  type PassingRun,
  selectEvidence,
} from '../../analytics/ranking.js';

function failure(runId: string, task: string, mechanism: string, extra: Partial<Failure> = {}): Failure {
  return {
    runId,
    mechanism,
    task,
    model: runId.startsWith('b') ? 'model-b' : 'model-a',
    firstStep: 2,
    evidenceSteps: [2, 4],
    excerpt: `${mechanism} at step 2 of ${runId}`,
    calls: [
      { step: 2, tool: 'shell', command: 'cd /app && make test', exitCode: 2, output: 'make: *** [test] Error 1' },
    ],
    ...extra,
  };
}

const rootCause = { terminalCause: 'tests failed', criticality: 'root-cause' as const, mechanism: 'm', reasoning: '' };

describe('clusterScore and criticality', () => {
  it('weighs a root cause above an undiagnosed cluster of the same size', () => {
    expect(clusterScore('root-cause', 4, 4)).toBe(8);
    expect(clusterScore('unknown', 4, 4)).toBe(4);
    expect(clusterScore('friction', 4, 4)).toBeCloseTo(2.4);
  });

  it('takes the most frequent diagnosed criticality, ties to the more severe, unknown without diagnoses', () => {
    const friction = { ...rootCause, criticality: 'friction' as const };
    expect(clusterCriticality([failure('a1', 't', 'x')])).toBe('unknown');
    expect(
      clusterCriticality([
        failure('a1', 't', 'x', { diagnosis: friction }),
        failure('a2', 't', 'x', { diagnosis: friction }),
        failure('a3', 't', 'x', { diagnosis: rootCause }),
      ]),
    ).toBe('friction');
    expect(
      clusterCriticality([
        failure('a1', 't', 'x', { diagnosis: friction }),
        failure('a3', 't', 'x', { diagnosis: rootCause }),
      ]),
    ).toBe('root-cause');
  });
});

describe('labels', () => {
  it('names the program a command runs', () => {
    expect(commandHead('cd /repo && mvn -q test')).toBe('mvn test');
    expect(commandHead('python3 solve.py --fast')).toBe('python3');
    expect(commandHead('export A=1; /usr/bin/pip install numpy')).toBe('pip install');
    expect(commandHead('edit 12:14\nfoo\nend_of_edit')).toBe('edit');
    expect(commandHead('')).toBeUndefined();
  });

  it('says the main mechanism and the command most members ran', () => {
    const failures = [failure('a1', 't1', 'repeated-failed-command'), failure('a2', 't2', 'repeated-failed-command')];
    expect(clusterLabel(failures)).toBe('Repeated failed command: `make test`');
  });

  it('adds a second mechanism that covers a quarter of the members, and prefers a shared terminal cause', () => {
    const failures = [
      failure('a1', 't1', 'budget-exhaustion', { diagnosis: rootCause, calls: [] }),
      failure('a2', 't2', 'budget-exhaustion', { diagnosis: rootCause, calls: [] }),
      failure('a3', 't3', 'exploration-without-implementation', { diagnosis: rootCause, calls: [] }),
    ];
    expect(clusterLabel(failures)).toBe('Budget exhaustion + exploration without implementation: tests failed');
  });
});

describe('selectEvidence', () => {
  it('takes 3 to 5 failures, closest to the centre first, spreading over tasks and runs', () => {
    const failures = [
      failure('a1', 't1', 'x'),
      failure('a1', 't1', 'y'),
      failure('a2', 't1', 'x'),
      failure('a3', 't2', 'x'),
      failure('a4', 't3', 'x'),
      failure('a5', 't3', 'x'),
      failure('a6', 't4', 'x', { evidenceSteps: [], firstStep: null }),
    ];
    const group: FailureGroup = {
      key: 'k0',
      members: [0, 1, 2, 3, 4, 5, 6],
      distances: [0.5, 0.1, 0.2, 0.3, 0.4, 0.05, 0],
    };
    const chosen = selectEvidence(group, failures);
    expect(chosen.map((item) => `${item.runId}/${item.mechanism}`)).toEqual(['a5/x', 'a1/y', 'a3/x', 'a2/x', 'a4/x']);
    expect(selectEvidence(group, failures, 3)).toHaveLength(3);
  });
});

describe('buildClusterCards', () => {
  const failures = [
    failure('a1', 't1', 'repeated-failed-command'),
    failure('a2', 't2', 'repeated-failed-command'),
    failure('a3', 't3', 'repeated-failed-command'),
    failure('b1', 't1', 'missing-required-artifact', { diagnosis: rootCause }),
    failure('b2', 't4', 'missing-required-artifact', { diagnosis: rootCause }),
    failure('a4', 't1', 'tool-call-loop'),
    failure('a5', 't2', 'tool-call-loop'),
    failure('a6', 't5', 'tool-call-loop'),
    failure('a7', 't6', 'tool-call-loop'),
  ];
  const groups: FailureGroup[] = [
    { key: 'repeated', members: [0, 1, 2] },
    { key: 'artifact', members: [3, 4] },
    { key: 'loop', members: [5, 6, 7, 8] },
  ];
  const passing = new Map<string, PassingRun[]>([
    ['t1', [{ runId: 'p1', task: 't1', model: 'model-a' }]],
    [
      't4',
      [
        { runId: 'p3', task: 't4', model: 'model-b' },
        { runId: 'p2', task: 't4', model: 'model-a' },
      ],
    ],
  ]);
  const cards = buildClusterCards(groups, failures, { mode: 'signature', passingRunsByTask: passing });

  it('ranks by score: criticality x runs x sqrt(tasks)', () => {
    // loop: 0.5 x 4 x sqrt(4) = 4; artifact (diagnosed root cause): 1 x 2 x sqrt(2); repeated: 0.5 x 3 x sqrt(3).
    expect(cards.map((card) => [card.rank, card.signature, card.score])).toEqual([
      [1, 'loop', 4],
      [2, 'artifact', 2.828],
      [3, 'repeated', 2.598],
    ]);
  });

  it('fills each card: label, mechanisms, counts, tasks, models, runs, evidence, passing runs to preserve', () => {
    const artifact = cards.find((card) => card.signature === 'artifact');
    expect(artifact).toMatchObject({
      label: 'Missing required artifact: tests failed',
      mode: 'signature',
      criticality: 'root-cause',
      mechanisms: [{ mechanism: 'missing-required-artifact', failures: 2 }],
      failureCount: 2,
      runCount: 2,
      taskCount: 2,
      tasks: ['t1', 't4'],
      models: ['model-b'],
      runIds: ['b1', 'b2'],
      preserve: {
        passingRunCount: 3,
        passingRuns: [
          { runId: 'p1', task: 't1', model: 'model-a' },
          { runId: 'p2', task: 't4', model: 'model-a' },
          { runId: 'p3', task: 't4', model: 'model-b' },
        ],
      },
    });
    expect(artifact?.evidence).toEqual([
      {
        runId: 'b1',
        task: 't1',
        model: 'model-b',
        mechanism: 'missing-required-artifact',
        firstStep: 2,
        steps: [2, 4],
        excerpt: 'missing-required-artifact at step 2 of b1',
        calls: failures[3]?.calls,
        terminalCause: 'tests failed',
      },
      expect.objectContaining({ runId: 'b2', task: 't4' }),
    ]);
    const loop = cards.find((card) => card.signature === 'loop');
    expect(loop?.evidence.map((item) => item.runId)).toEqual(['a4', 'a5', 'a6', 'a7']);
  });

  it('gives the same cards, ids and order for the same groups in another order', () => {
    const again = buildClusterCards([...groups].reverse(), failures, { mode: 'signature', passingRunsByTask: passing });
    expect(again).toEqual(cards);
    expect(new Set(cards.map((card) => card.clusterId)).size).toBe(3);
    expect(cards.every((card) => /^[0-9a-f]{12}$/.test(card.clusterId))).toBe(true);
  });
});
