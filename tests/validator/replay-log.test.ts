import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mineWeaknesses } from '../../analytics/mine.js';
import { EventLog } from '../../core/index.js';
import { listValidations, loadLoggedRuns, replayCandidate } from '../../validator/index.js';
import { type HandRun, handRunEvents } from './runs.js';

const folder = mkdtempSync(join(tmpdir(), 'selfharness-replay-'));
let log: EventLog;
let loopCluster: string;
let artifactCluster: string;

const loopRun = (index: number, task: string): HandRun => ({
  runId: `loop-${index}`,
  task,
  outcome: 'failed',
  calls: [
    { command: 'ls', output: 'input.txt' },
    ...Array.from({ length: 5 }, () => ({ command: 'cat input.txt | wc -w', output: '0' })),
  ],
  failedTest: { name: 'test_count', message: 'expected 42, got 0' },
});

const artifactRun = (index: number, task: string): HandRun => ({
  runId: `artifact-${index}`,
  task,
  outcome: 'failed',
  instruction: 'Write the word count to `out/count.txt`.',
  calls: [{ command: 'wc -w input.txt', output: '42 input.txt' }],
  failedTest: { name: 'test_count_file', message: 'missing required file out/count.txt' },
});

const passingRun = (index: number, task: string): HandRun => ({
  runId: `pass-${index}`,
  task,
  outcome: 'passed',
  instruction: 'Write the word count to `out/count.txt`.',
  calls: [{ command: 'ls', output: 'input.txt' }, { command: 'mkdir -p out && wc -w < input.txt > out/count.txt' }],
});

beforeAll(async () => {
  log = await EventLog.open(join(folder, 'log.duckdb'));
  const runs = [
    loopRun(1, 'task-a'),
    loopRun(2, 'task-b'),
    loopRun(3, 'task-c'),
    artifactRun(1, 'task-a'),
    artifactRun(2, 'task-d'),
    ...['task-a', 'task-b', 'task-c', 'task-d'].map((task, index) => passingRun(index + 1, task)),
  ];
  await log.appendEvents(runs.flatMap(handRunEvents));
  const mining = await mineWeaknesses(log, { mode: 'signature' });
  const byMechanism = (mechanism: string) =>
    mining.clusters.find((card) => card.mechanisms.some((entry) => entry.mechanism === mechanism))!.clusterId;
  loopCluster = byMechanism('tool-call-loop');
  artifactCluster = byMechanism('missing-required-artifact');
});

afterAll(() => {
  log?.close();
  rmSync(folder, { recursive: true, force: true });
});

const addMiddleware = (value: Record<string, unknown>) => [{ op: 'add' as const, path: '/middleware/-', value }];

describe('shadow replay against the log', () => {
  it('reads logged runs with their turns, calls and verifier results', async () => {
    const [run] = await loadLoggedRuns(log, { runIds: ['artifact-1'] });
    expect(run).toMatchObject({
      runId: 'artifact-1',
      task: 'task-a',
      outcome: 'failed',
      instruction: 'Write the word count to `out/count.txt`.',
      tests: [{ name: 'test_count_file', status: 'failed', message: 'missing required file out/count.txt' }],
    });
    expect(run?.turns.map((turn) => turn.calls.map((call) => call.tool))).toEqual([['shell'], ['finish']]);
    expect(await loadLoggedRuns(log, { outcome: 'passed', tasks: ['task-a', 'task-b'] })).toHaveLength(2);
  });

  it('keeps a loop-breaker that fires on its target failures and records the decision with its numbers', async () => {
    const result = await replayCandidate(
      log,
      { proposalId: 'p-loop', clusterId: loopCluster, patch: addMiddleware({ name: 'loop-breaker', maxRepeats: 3 }) },
      { time: '2026-01-02T00:00:00Z' },
    );
    expect(result.verdict.screenedOut).toBe(false);
    expect(result.summary?.target).toMatchObject({ runs: 3, fired: 3 });
    expect(
      result.summary?.target.perRun.map((run) => [run.runId, run.firstInterventionStep, run.firstEvidenceStep]),
    ).toEqual([
      ['loop-1', 4, 2],
      ['loop-2', 4, 2],
      ['loop-3', 4, 2],
    ]);
    expect(result.summary?.passingAll).toMatchObject({ runs: 4, fired: 0 });
    expect(result.summary?.passingSameTasks).toMatchObject({ runs: 3, fired: 0 });
    expect(result.appended).toBe(true);
    const [decision] = await listValidations(log, 'p-loop');
    expect(decision).toMatchObject({
      proposalId: 'p-loop',
      stage: 'replay',
      decision: 'accepted',
      metrics: { clusterId: loopCluster, targetRuns: 3, targetFired: 3, passingRuns: 4, passingFired: 0 },
    });
    expect(decision?.reasons[0]).toBe(
      "Fires on 3 of 3 target failures (100%); median lead -2 steps before the failure's first evidence (0 at or before it).",
    );
    const again = await replayCandidate(
      log,
      { proposalId: 'p-loop', clusterId: loopCluster, patch: addMiddleware({ name: 'loop-breaker', maxRepeats: 3 }) },
      { time: '2026-01-03T00:00:00Z' },
    );
    expect(again.appended).toBe(false);
    expect(await listValidations(log, 'p-loop')).toHaveLength(1);
  });

  it('keeps an artifact check that refuses the finish of its targets at the finish step', async () => {
    const result = await replayCandidate(log, {
      proposalId: 'p-artifact',
      clusterId: artifactCluster,
      patch: addMiddleware({ name: 'artifact-check' }),
    });
    expect(result.verdict.screenedOut).toBe(false);
    expect(result.targets.map((target) => [target.trace.runId, target.trace.firstStep])).toEqual([
      ['artifact-1', 2],
      ['artifact-2', 2],
    ]);
    expect(result.summary?.passingAll.fired).toBe(0);
  });

  it('screens out a candidate that never fires on its target, writing the reason', async () => {
    const result = await replayCandidate(log, {
      proposalId: 'p-never',
      clusterId: loopCluster,
      patch: addMiddleware({ name: 'failed-command-guard', maxFailures: 2 }),
    });
    expect(result.verdict.screenedOut).toBe(true);
    const [decision] = await listValidations(log, 'p-never');
    expect(decision).toMatchObject({ stage: 'replay', decision: 'screened-out', metrics: { targetFired: 0 } });
    expect(decision?.reasons[0]).toBe('Never fires on its target: 0 of 3 failed runs of the target cluster.');
  });

  it('screens out a candidate that fires on most passing runs', async () => {
    const result = await replayCandidate(log, {
      proposalId: 'p-noisy',
      clusterId: loopCluster,
      patch: [
        {
          op: 'add',
          path: '/rules/-',
          value: {
            id: 'think-first',
            trigger: { on: 'tool-call', tool: '^shell$' },
            action: { type: 'inject', message: 'Think before you run a command.' },
          },
        },
      ],
    });
    expect(result.verdict.screenedOut).toBe(true);
    const [decision] = await listValidations(log, 'p-noisy');
    expect(decision?.decision).toBe('screened-out');
    expect(decision?.reasons).toContain('Fires on most passing runs: 4 of 4 (100%, limit 50%).');
    expect(decision?.metrics).toMatchObject({ passingFireRate: 1, maxPassingFireRate: 0.5 });
  });

  it('screens out a patch that does not apply to its base, with the patch reasons', async () => {
    const result = await replayCandidate(log, {
      proposalId: 'p-broken',
      clusterId: loopCluster,
      patch: [{ op: 'replace', path: '/tools/shell/enabled', value: false }],
    });
    expect(result.verdict.screenedOut).toBe(true);
    const [decision] = await listValidations(log, 'p-broken');
    expect(decision?.reasons[0]).toMatch(
      /^The patch does not apply to its base harness: operation 0 \(replace \/tools\/shell\/enabled\): not an editable surface/,
    );
  });

  it('names an unknown cluster', async () => {
    await expect(
      replayCandidate(log, {
        proposalId: 'p-x',
        clusterId: 'no-such-cluster',
        patch: addMiddleware({ name: 'artifact-check' }),
      }),
    ).rejects.toThrow('Unknown weakness cluster no-such-cluster');
  });
});
