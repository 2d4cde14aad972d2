import type { TraceEvent } from '../../core/index.js';
import { verdictEvents } from './events.js';

/** A shell call in a scripted run: what the agent ran and what came back. */
export interface ScriptedCall {
  command: string;
  output: string;
  exitCode: number;
}

export interface ScriptedRun {
  runId: string;
  task: string;
  model?: string;
  split?: string;
  outcome: 'passed' | 'failed' | 'invalid';
  calls: readonly ScriptedCall[];
  /** A verifier test that failed, e.g. `test_output_exists` with `output.txt not found`. */
  failedTest?: { name: string; message: string };
  failureReason?: string;
}

/**
 * The events of a run whose failure mechanisms a test knows: one agent step per shell call, then the verifier and the
 * end. Step numbers start at 1, so a test can check cited steps against `steps` and `tool_calls`.
 */
export function scriptedRun(run: ScriptedRun): TraceEvent[] {
  const events: TraceEvent[] = [
    {
      id: `${run.runId}#start`,
      runId: run.runId,
      type: 'run-start',
      time: '2026-01-01T00:00:00Z',
      data: { task: run.task, model: run.model ?? 'model-a', dataset: 'mining-unit', split: run.split ?? 'held-in' },
    },
  ];
  run.calls.forEach((call, index) => {
    const step = index + 1;
    events.push(
      {
        id: `${run.runId}#step-${step}`,
        runId: run.runId,
        type: 'step-create',
        data: { step, role: 'agent', message: `Running ${call.command}` },
      },
      {
        id: `${run.runId}#call-${step}`,
        runId: run.runId,
        type: 'tool-call',
        data: { step, callId: `c${step}`, tool: 'shell', arguments: { command: call.command }, command: call.command },
      },
      {
        id: `${run.runId}#result-${step}`,
        runId: run.runId,
        type: 'tool-result',
        data: { step, callId: `c${step}`, output: call.output, exitCode: call.exitCode },
      },
    );
  });
  events.push(...verdictEvents(run));
  return events;
}

const makeFails: ScriptedCall = { command: 'make test', output: 'make: *** [test] Error 1', exitCode: 2 };
const numpyMissing: ScriptedCall = {
  command: 'python3 solve.py',
  output: "Traceback (most recent call last):\nModuleNotFoundError: No module named 'numpy'",
  exitCode: 1,
};
const listing: ScriptedCall = { command: 'ls', output: 'README.md src', exitCode: 0 };

/**
 * A small log with known weaknesses:
 * - `make test` failing three times in a row, in 4 runs across 4 tasks (two models);
 * - a missing Python module, in 3 runs across 3 tasks;
 * - a loop of one run on one task only (dropped by the ≥ 2 runs / ≥ 2 tasks rule);
 * - passing runs on tasks t1 and t2 (to preserve), and an invalid run that must never be mined.
 */
export function weaknessRuns(): ScriptedRun[] {
  return [
    ...['t1', 't2', 't3', 't4'].map(
      (task, index): ScriptedRun => ({
        runId: `make-${index + 1}`,
        task,
        model: index % 2 === 0 ? 'model-a' : 'model-b',
        outcome: 'failed',
        calls: [listing, makeFails, makeFails, makeFails],
      }),
    ),
    ...['t1', 't2', 't5'].map(
      (task, index): ScriptedRun => ({
        runId: `numpy-${index + 1}`,
        task,
        outcome: 'failed',
        calls: [listing, numpyMissing],
      }),
    ),
    {
      runId: 'loop-1',
      task: 't6',
      outcome: 'failed',
      calls: Array.from({ length: 5 }, () => ({ command: 'cat notes.txt', output: 'todo', exitCode: 0 })),
    },
    {
      runId: 'pass-1',
      task: 't1',
      outcome: 'passed',
      calls: [listing, { command: 'make', output: 'ok', exitCode: 0 }],
    },
    {
      runId: 'pass-2',
      task: 't2',
      outcome: 'passed',
      calls: [listing, { command: 'make', output: 'ok', exitCode: 0 }],
    },
    { runId: 'pass-3', task: 't9', outcome: 'passed', calls: [listing] },
    {
      runId: 'invalid-1',
      task: 't3',
      outcome: 'invalid',
      calls: [makeFails, makeFails, makeFails],
      failureReason: 'docker daemon unreachable',
    },
  ];
}

export function weaknessEvents(): TraceEvent[] {
  return weaknessRuns().flatMap(scriptedRun);
}
