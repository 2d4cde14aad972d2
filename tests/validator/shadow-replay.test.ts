import { describe, expect, it } from 'vitest';
import { applySpecPatch, defaultHarnessSpec, type HarnessSpec } from '../../harness/index.js';
import { shadowReplay } from '../../validator/index.js';
import { handRun } from './runs.js';

function withPatch(patch: unknown[]): HarnessSpec {
  const result = applySpecPatch(defaultHarnessSpec, patch);
  if (!result.ok) throw new Error(result.reasons.join('; '));
  return result.spec;
}

const loopBreaker = withPatch([{ op: 'add', path: '/middleware/-', value: { name: 'loop-breaker', maxRepeats: 3 } }]);
const artifactCheck = withPatch([{ op: 'add', path: '/middleware/-', value: { name: 'artifact-check' } }]);

const looping = handRun({
  runId: 'loop-1',
  task: 'count-words',
  outcome: 'failed',
  calls: [
    { command: 'ls', output: 'input.txt' },
    { command: 'cat input.txt | wc -w', output: '0' },
    { command: 'cat input.txt | wc -w', output: '0' },
    { command: 'cat input.txt | wc -w', output: '0' },
    { command: 'cat input.txt | wc -w', output: '0' },
  ],
});

const clean = handRun({
  runId: 'clean-1',
  task: 'count-words',
  outcome: 'passed',
  instruction: 'Count the words of input.txt and write the number to `out/count.txt`.',
  calls: [
    { command: 'ls', output: 'input.txt' },
    { command: 'mkdir -p out && wc -w < input.txt > out/count.txt' },
    { command: 'cat out/count.txt', output: '42' },
  ],
});

describe('shadow replay', () => {
  it('finds where a loop-breaker blocks a repeated call, and that it stays quiet on a clean run', async () => {
    const trace = await shadowReplay(loopBreaker, looping);
    expect(trace.interventions.map((item) => [item.step, item.kind, item.middleware])).toEqual([
      [4, 'block', 'loop-breaker'],
      [5, 'block', 'loop-breaker'],
    ]);
    expect(trace.firstStep).toBe(4);
    expect(trace.interventions[0]?.message).toContain('You have made this exact shell call 3 times recently');
    expect(trace.interventions[0]?.simulated).toBe(false);
    expect((await shadowReplay(loopBreaker, clean)).interventions).toEqual([]);
  });

  it('refuses the finish of a run whose verifier reported the required file missing', async () => {
    const missing = handRun({
      runId: 'artifact-1',
      task: 'count-words',
      outcome: 'failed',
      instruction: 'Count the words of input.txt and write the number to `out/count.txt`.',
      calls: [
        { command: 'wc -w input.txt', output: '42 input.txt' },
        { command: 'echo 42 > out/count.txt', output: 'bash: out/count.txt: No such file or directory', exitCode: 1 },
      ],
      failedTest: { name: 'test_count_file', message: 'missing required file out/count.txt' },
    });
    const trace = await shadowReplay(artifactCheck, missing);
    expect(trace.interventions).toEqual([
      {
        step: 3,
        callId: 'c3',
        middleware: 'artifact-check',
        kind: 'refuse-finish',
        message: 'required file is missing: out/count.txt. Create it in the workspace, then call finish again.',
        simulated: true,
      },
    ]);
    expect(trace.finishStep).toBe(3);
    expect((await shadowReplay(artifactCheck, clean)).interventions).toEqual([]);
  });

  it('assumes a finish at the end of a run without a finish call, unless it stopped on a budget', async () => {
    const base = {
      runId: 'no-finish',
      task: 'count-words',
      outcome: 'failed' as const,
      instruction: 'Write the number to `out/count.txt`.',
      calls: [{ command: 'wc -w input.txt', output: '42 input.txt' }],
      finish: false,
    };
    const ended = await shadowReplay(artifactCheck, handRun(base));
    expect(ended).toMatchObject({ finishAssumed: true, finishStep: 1 });
    expect(ended.interventions.map((item) => item.kind)).toEqual(['refuse-finish']);
    const timedOut = await shadowReplay(artifactCheck, handRun({ ...base, failureReason: 'agent_timeout' }));
    expect(timedOut).toMatchObject({ finishAssumed: false, interventions: [] });
  });

  it('warns before the first call of a program the log later reports as not installed', async () => {
    const spec = withPatch([{ op: 'add', path: '/middleware/-', value: { name: 'dependency-precheck' } }]);
    const run = handRun({
      runId: 'dependency-1',
      task: 'parse-json',
      outcome: 'failed',
      calls: [
        { command: 'ls', output: 'data.json' },
        { command: 'jq .name data.json', output: 'bash: line 1: jq: command not found', exitCode: 127 },
        { command: 'python3 -c "print(1)"', output: '1' },
      ],
    });
    const trace = await shadowReplay(spec, run);
    expect(trace.interventions.map((item) => [item.step, item.kind, item.simulated])).toEqual([[2, 'warn', true]]);
    expect(trace.interventions[0]?.message).toContain('this program is not installed: jq');
  });

  it('marks the call that failed because a fresh shell lost the directory an earlier call entered', async () => {
    const spec = withPatch([{ op: 'add', path: '/middleware/-', value: { name: 'persistent-shell' } }]);
    const run = handRun({
      runId: 'state-1',
      task: 'build-lib',
      outcome: 'failed',
      calls: [
        { command: 'cd project/src', output: '' },
        {
          command: 'python3 main.py',
          output: "python3: can't open file '/workspace/main.py': [Errno 2] No such file or directory",
          exitCode: 2,
        },
      ],
    });
    const trace = await shadowReplay(spec, run);
    expect(trace.interventions.map((item) => [item.step, item.kind])).toEqual([[2, 'state']]);
    expect(trace.interventions[0]?.message).toContain('the working directory project/src (set at step 1)');
  });

  it('runs declarative rules on the logged results, with check commands simulated from the verdict', async () => {
    const spec = withPatch([
      {
        op: 'add',
        path: '/rules/-',
        value: {
          id: 'no-such-file',
          trigger: { on: 'tool-result', tool: '^shell$', output: 'No such file', exitCode: 'nonzero' },
          action: { type: 'inject', message: 'List the folder first.' },
        },
      },
      {
        op: 'add',
        path: '/rules/-',
        value: { id: 'run-tests', trigger: { on: 'finish' }, action: { type: 'check', command: 'make test' } },
      },
    ]);
    const run = handRun({
      runId: 'rules-1',
      task: 'build-lib',
      outcome: 'failed',
      calls: [{ command: 'cat src/missing.c', output: 'cat: src/missing.c: No such file or directory', exitCode: 1 }],
    });
    const trace = await shadowReplay(spec, run);
    expect(trace.interventions.map((item) => [item.step, item.kind, item.middleware])).toEqual([
      [1, 'inject', 'rules'],
      [2, 'refuse-finish', 'rules'],
    ]);
    expect(trace.interventions[0]?.message).toBe('List the folder first. (rule no-such-file)');
    const passing = await shadowReplay(spec, { ...run, outcome: 'passed' });
    expect(passing.interventions.map((item) => item.kind)).toEqual(['inject']);
  });
});
