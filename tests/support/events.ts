import type { TraceEvent } from '../../core/index.js';

/** A small, complete run as events: start, two agent steps with a shell call each, verification, end. */
export function sampleRun(runId: string, outcome: 'passed' | 'failed' | 'invalid' = 'failed'): TraceEvent[] {
  return [
    {
      id: `${runId}#start`,
      runId,
      type: 'run-start',
      time: '2026-01-01T00:00:00Z',
      data: { task: 'make-output', model: 'model-a', dataset: 'unit', attempt: 1 },
    },
    {
      id: `${runId}#step-1`,
      runId,
      type: 'step-create',
      time: '2026-01-01T00:00:01Z',
      data: { step: 1, role: 'agent', message: 'Build it.', promptTokens: 100, completionTokens: 10 },
    },
    {
      id: `${runId}#call-a`,
      runId,
      type: 'tool-call',
      data: { step: 1, callId: 'a', tool: 'shell', arguments: { command: 'make' }, command: 'make' },
    },
    {
      id: `${runId}#result-a`,
      runId,
      type: 'tool-result',
      data: { step: 1, callId: 'a', output: 'make: *** No targets.  Stop.', exitCode: 2 },
    },
    {
      id: `${runId}#step-2`,
      runId,
      type: 'step-create',
      time: '2026-01-01T00:00:02Z',
      data: { step: 2, role: 'agent', message: 'Try again.', promptTokens: 120, completionTokens: 12 },
    },
    {
      id: `${runId}#call-b`,
      runId,
      type: 'tool-call',
      data: { step: 2, callId: 'b', tool: 'shell', arguments: { command: 'make all' }, command: 'make all' },
    },
    { id: `${runId}#result-b`, runId, type: 'tool-result', data: { step: 2, callId: 'b', output: 'ok', exitCode: 0 } },
    {
      id: `${runId}#verify`,
      runId,
      type: 'run-verify',
      data: {
        reward: outcome === 'passed' ? 1 : 0,
        tests: [
          {
            name: 'test_output',
            status: outcome === 'passed' ? 'passed' : 'failed',
            message: outcome === 'passed' ? undefined : 'output.txt missing',
          },
        ],
      },
    },
    {
      id: `${runId}#end`,
      runId,
      type: 'run-end',
      time: '2026-01-01T00:00:03Z',
      data: {
        outcome,
        reward: outcome === 'passed' ? 1 : 0,
        failureReason: outcome === 'passed' ? undefined : 'tests failed',
      },
    },
  ];
}

/**
 * The verifier's result and the end of a hand-written run: one test that passed, or the named failing test (or
 * `test_task`) when it failed, and the outcome with its reason.
 */
export function verdictEvents(run: {
  runId: string;
  outcome: 'passed' | 'failed' | 'invalid';
  failedTest?: { name: string; message: string };
  failureReason?: string;
}): TraceEvent[] {
  const passed = run.outcome === 'passed';
  return [
    {
      id: `${run.runId}#verify`,
      runId: run.runId,
      type: 'run-verify',
      data: {
        reward: passed ? 1 : 0,
        tests: [
          run.failedTest && !passed
            ? { name: run.failedTest.name, status: 'failed', message: run.failedTest.message }
            : { name: 'test_task', status: passed ? 'passed' : 'failed' },
        ],
      },
    },
    {
      id: `${run.runId}#end`,
      runId: run.runId,
      type: 'run-end',
      data: {
        outcome: run.outcome,
        reward: passed ? 1 : 0,
        ...(run.failureReason ? { failureReason: run.failureReason } : {}),
      },
    },
  ];
}
