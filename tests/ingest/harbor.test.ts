import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TraceEvent } from '../../core/index.js';
import { decideOutcome, harborAdapter } from '../../ingest/harbor.js';
import { ingestFiles } from '../fuzz/regression.js';
import { collect } from '../support/collect.js';
import { hasSharedTraces, sharedTracesDir, sharedTracesSkipReason } from '../support/shared-traces.js';

const fixtures = resolve(import.meta.dirname, '../fixtures/harbor');
const job = join(fixtures, 'jobs', 'tb2-sample');

function ofType<T extends TraceEvent['type']>(events: TraceEvent[], type: T, runId?: string) {
  return events.filter(
    (event): event is Extract<TraceEvent, { type: T }> =>
      event.type === type && (runId === undefined || event.runId === runId),
  );
}

async function readTrial(directory: string) {
  const result = await collect(harborAdapter, directory, true);
  expect(result.invalid).toEqual([]);
  return result;
}

describe('harbor adapter: claiming directories', () => {
  const claims = (directory: string) => harborAdapter.claimsDirectory?.(directory, readdirSync(directory)) ?? false;

  it('claims trial directories and leaves job directories to the walker', () => {
    expect(claims(job)).toBe(false);
    expect(claims(join(job, 'fix-git__a1b2c3d'))).toBe(true);
    expect(claims(join(job, 'qemu-startup__k3j4h5g'))).toBe(true);
    expect(claims(fixtures)).toBe(false);
  });
});

describe('harbor adapter: trials', () => {
  it('reads a passed trial: its trajectory, its continuation, its tests and its verdict', async () => {
    const trial = join(job, 'fix-git__a1b2c3d');
    const { events, rejects } = await readTrial(trial);
    expect(rejects).toEqual([]);
    const runId = 'harbor:0d6c1f5a-1111-4a1a-9a1a-000000000001';
    const starts = ofType(events, 'run-start');
    expect(starts.map((start) => [start.runId, start.data.parentRunId, start.data.relation])).toEqual([
      [runId, undefined, undefined],
      [`${runId}/trajectory.cont-1.json`, runId, 'continuation'],
    ]);
    expect(starts[0]?.time).toBe('2025-11-05T10:00:00.000000+00:00');
    expect(starts[0]?.data).toMatchObject({
      task: 'fix-git',
      dataset: 'terminal-bench@2.0',
      model: 'openai/gpt-4o',
      agent: 'terminus-2',
      agentVersion: '2.0.0',
      trialName: 'fix-git__a1b2c3d',
      metadata: {
        trialId: '0d6c1f5a-1111-4a1a-9a1a-000000000001',
        jobName: 'tb2-sample',
        sessionId: '0d6c1f5a-session',
        timings: {
          agent_execution: {
            startedAt: '2025-11-05T10:01:10.000000+00:00',
            finishedAt: '2025-11-05T10:05:00.000000+00:00',
          },
        },
      },
    });
    expect(starts[1]?.data).toMatchObject({
      task: 'fix-git',
      dataset: 'terminal-bench@2.0',
      trialName: 'fix-git__a1b2c3d',
    });

    expect(ofType(events, 'step-create', runId)).toHaveLength(4);
    expect(ofType(events, 'step-create', `${runId}/trajectory.cont-1.json`)).toHaveLength(2);
    const calls = ofType(events, 'tool-call', runId);
    expect(calls.map((call) => call.data.command)).toEqual(['git reflog | head -5', 'git merge d7d3e4b']);
    expect(calls[1]?.source).toEqual({
      format: 'harbor',
      file: join(trial, 'agent', 'trajectory.json'),
      position: 'steps[2].tool_calls[0]',
    });
    const [merge] = ofType(events, 'tool-result', runId).filter((result) => result.data.callId === 'call_1_1');
    expect(merge?.data.output).toContain('CONFLICT (content): Merge conflict in _includes/about.md');

    const [verify] = ofType(events, 'run-verify');
    expect(verify?.runId).toBe(runId);
    expect(verify?.data).toEqual({
      reward: 1,
      tests: [
        { name: 'test_outputs.py::test_commit_merged', status: 'passed', durationMs: 250 },
        { name: 'test_outputs.py::test_about_page', status: 'passed', durationMs: 500 },
      ],
    });
    const ends = ofType(events, 'run-end', runId);
    expect(ends.map((end) => end.data)).toEqual([
      {
        outcome: 'passed',
        reward: 1,
        promptTokens: 2100,
        completionTokens: 260,
        costUsd: 0.0079,
        startedAt: '2025-11-05T10:00:00.000000+00:00',
        endedAt: '2025-11-05T10:06:00.000000+00:00',
      },
    ]);
    expect(ofType(events, 'run-end', `${runId}/trajectory.cont-1.json`).map((end) => end.data.outcome)).toEqual([
      'unknown',
    ]);
    expect(new Set(events.map((event) => event.id)).size).toBe(events.length);
  });

  it('counts an agent timeout with a verifier result as the agent failing', async () => {
    const { events, rejects } = await readTrial(join(job, 'build-cython__x9y8z7w'));
    expect(rejects).toEqual([]);
    expect(ofType(events, 'run-start')).toHaveLength(1);
    expect(ofType(events, 'run-start')[0]?.data).toMatchObject({
      dataset: 'terminal-bench',
      metadata: { exception: { type: 'AgentTimeoutError', message: 'Agent execution timed out after 900.0 seconds' } },
    });
    expect(ofType(events, 'step-create')).toHaveLength(2);
    expect(ofType(events, 'tool-call').map((call) => call.data.command)).toEqual([
      'python setup.py build_ext --inplace',
    ]);
    const [verify] = ofType(events, 'run-verify');
    expect(verify?.data.reward).toBe(0);
    expect(verify?.data.tests.map((test) => [test.name, test.status])).toEqual([
      ['test_outputs.py::test_module_imports', 'failed'],
      ['test_outputs.py::test_sources_present', 'passed'],
      ['test_outputs.py::test_benchmark', 'skipped'],
    ]);
    expect(verify?.data.tests[0]?.message).toBe("ModuleNotFoundError: No module named 'fastmath'");
    const [end] = ofType(events, 'run-end');
    expect(end?.data).toMatchObject({
      outcome: 'failed',
      reward: 0,
      failureReason: 'AgentTimeoutError',
      promptTokens: 5000,
    });
  });

  it('marks an infrastructure failure without a reward invalid, and still makes a run of it', async () => {
    const { events, rejects } = await readTrial(join(job, 'qemu-startup__k3j4h5g'));
    expect(rejects).toEqual([]);
    expect(events.map((event) => event.type)).toEqual(['run-start', 'run-end']);
    expect(events[0]?.source?.file).toBe(join(job, 'qemu-startup__k3j4h5g', 'result.json'));
    expect(events[1]?.data).toEqual({
      outcome: 'invalid',
      failureReason: 'EnvironmentStartTimeoutError',
      startedAt: '2025-11-05T10:04:00.000000+00:00',
      endedAt: '2025-11-05T10:14:05.000000+00:00',
    });
  });

  it('rejects a truncated result.json and still loads the trajectory and the reward', async () => {
    const trial = join(fixtures, 'truncated-result__q1w2e3r');
    const { events, rejects } = await readTrial(trial);
    expect(rejects).toHaveLength(1);
    expect(rejects[0]).toMatchObject({ format: 'harbor', file: join(trial, 'result.json'), position: 'end of file' });
    expect(rejects[0]?.reason).toMatch(/^truncated JSON/);
    expect(rejects[0]?.raw).toBe(readFileSync(join(trial, 'result.json'), 'utf8'));

    const runId = 'harbor:truncated-result__q1w2e3r';
    expect(new Set(events.map((event) => event.runId))).toEqual(new Set([runId]));
    expect(ofType(events, 'run-start')[0]?.data).toMatchObject({
      task: 'truncated-result',
      trialName: 'truncated-result__q1w2e3r',
      agent: 'oracle',
    });
    expect(ofType(events, 'tool-call').map((call) => call.data.command)).toEqual(['bash /solution/solve.sh']);
    expect(ofType(events, 'run-verify')[0]?.data).toEqual({ reward: 0, tests: [] });
    expect(ofType(events, 'run-end')[0]?.data).toMatchObject({
      outcome: 'failed',
      reward: 0,
      failureReason: 'reward 0',
    });
  });
});

describe('harbor outcomes', () => {
  it('lets the reward decide, then the exception, then the tests', () => {
    expect(decideOutcome({ reward: 1, tests: [] })).toEqual({ outcome: 'passed' });
    expect(decideOutcome({ reward: 0.5, tests: [] })).toEqual({ outcome: 'failed', failureReason: 'reward 0.5' });
    expect(decideOutcome({ reward: 0, exceptionType: 'AgentTimeoutError', tests: [] })).toEqual({
      outcome: 'failed',
      failureReason: 'AgentTimeoutError',
    });
    expect(decideOutcome({ exceptionType: 'AgentTimeoutError', tests: [] })).toEqual({
      outcome: 'failed',
      failureReason: 'AgentTimeoutError',
    });
    expect(decideOutcome({ exceptionType: 'RewardFileNotFoundError', tests: [] })).toEqual({
      outcome: 'invalid',
      failureReason: 'RewardFileNotFoundError',
    });
    expect(decideOutcome({ tests: [{ name: 't', status: 'failed' }] })).toEqual({
      outcome: 'failed',
      failureReason: 'tests failed',
    });
    expect(decideOutcome({ tests: [] }).outcome).toBe('unknown');
  });
});

describe.skipIf(!hasSharedTraces)(
  `harbor adapter on the real trial (${hasSharedTraces ? 'present' : sharedTracesSkipReason})`,
  () => {
    const trial = join(
      sharedTracesDir,
      'harbor-trial/claude-opus-4-5-0126-wenbo/claude-code-claude-opus-4-5-skills-citation-check-229ca9',
    );

    it('claims the trial directory but not the folder above it', () => {
      expect(harborAdapter.claimsDirectory?.(trial, readdirSync(trial))).toBe(true);
      const above = join(sharedTracesDir, 'harbor-trial/claude-opus-4-5-0126-wenbo');
      expect(harborAdapter.claimsDirectory?.(above, readdirSync(above))).toBe(false);
    });

    it('loads a run with its tests and verdict, with no invalid events or rejects', async () => {
      const { events, rejects } = await readTrial(trial);
      expect(rejects).toEqual([]);
      const ctrf = JSON.parse(readFileSync(join(trial, 'verifier/ctrf.json'), 'utf8')) as {
        results: { tests: unknown[] };
      };
      expect(events.map((event) => event.type)).toEqual(['run-start', 'run-verify', 'run-end']);
      expect(new Set(events.map((event) => event.runId))).toEqual(
        new Set(['harbor:2389938b-d121-451f-b614-89bd17baa1d6']),
      );
      expect(events[0]?.data).toMatchObject({
        task: 'citation-check',
        trialName: 'citation-check__bGmgnv8',
        agent: 'claude-code',
        model: 'bedrock/us.anthropic.claude-opus-4-5-20251101-v1:0',
      });
      const [verify] = ofType(events, 'run-verify');
      expect(verify?.data.tests).toHaveLength(ctrf.results.tests.length);
      expect(verify?.data.tests.every((test) => test.status === 'passed')).toBe(true);
      expect(ofType(events, 'run-end')[0]?.data).toMatchObject({ outcome: 'passed', reward: 1 });
    });
  },
);

describe('Harbor: bugs found by fuzzing (tests/fuzz)', () => {
  it('rejects the continuation of a trial trajectory that was rejected, and still loads the trial', async () => {
    const trial = 'job/task__abc';
    const { rejects, events } = await ingestFiles({
      [`${trial}/result.json`]: JSON.stringify({ id: 'trial-1', task_name: 'task', trial_name: 'task__abc' }),
      [`${trial}/agent/trajectory.json`]: '',
      [`${trial}/agent/trajectory.cont-1.json`]: '{"schema_version": "ATIF-v1.6", "steps": []}',
    });
    expect(rejects.map((reject) => [reject.file.split('/').at(-1), reject.position])).toEqual([
      ['trajectory.cont-1.json', '(file)'],
      ['trajectory.json', 'end of file'],
    ]);
    expect(events.map((event) => event.id)).toEqual(['harbor:trial-1#start', 'harbor:trial-1#end']);
  });

  it('rejects by name the trajectories that only a missing trajectory.json would place, and still loads the trial', async () => {
    const trial = 'job/task__abc';
    const { rejects, events } = await ingestFiles({
      [`${trial}/result.json`]: JSON.stringify({ id: 'trial-1', task_name: 'task', trial_name: 'task__abc' }),
      [`${trial}/agent/trajectory.cont-1.json`]: '{"schema_version": "ATIF-v1.6", "steps": []}',
      [`${trial}/agent/notes.json`]: '{"not": "a trajectory"}',
    });
    expect(rejects.map((reject) => [reject.file.split('/').at(-1), reject.position])).toEqual([
      ['trajectory.cont-1.json', '(root)'],
    ]);
    expect(rejects[0]?.reason).toMatch(/trajectory\.json is missing/);
    expect(events.map((event) => event.id)).toEqual(['harbor:trial-1#start', 'harbor:trial-1#end']);
  });

  it('rejects by name a continuation file that trajectory.json no longer references, and loads the rest', async () => {
    const trial = 'job/task__abc';
    const step = { step_id: 1, source: 'user', message: 'Do the task.' };
    const { rejects, events } = await ingestFiles({
      [`${trial}/result.json`]: JSON.stringify({ id: 'trial-1', task_name: 'task', trial_name: 'task__abc' }),
      [`${trial}/agent/trajectory.json`]: JSON.stringify({ schema_version: 'ATIF-v1.6', steps: [step] }),
      [`${trial}/agent/trajectory.cont-1.json`]: JSON.stringify({ schema_version: 'ATIF-v1.6', steps: [step] }),
    });
    expect(rejects.map((reject) => [reject.file.split('/').at(-1), reject.position])).toEqual([
      ['trajectory.cont-1.json', '(file)'],
    ]);
    expect(rejects[0]?.reason).toMatch(/does not reference it/);
    expect(events.map((event) => event.type)).toEqual(['run-start', 'step-create', 'run-end']);
  });
});
