import type { TraceEvent } from '../../core/index.js';
import type { LoggedCall, LoggedRun } from '../../validator/index.js';
import { verdictEvents } from '../support/events.js';

/** A call in a hand-made run: a shell command by default, or any tool with arguments. */
export interface HandCall {
  command?: string;
  tool?: string;
  arguments?: Record<string, unknown>;
  output?: string;
  exitCode?: number;
}

export interface HandRun {
  runId: string;
  task: string;
  model?: string;
  outcome: 'passed' | 'failed';
  instruction?: string;
  calls: HandCall[];
  /** End with a `finish` call (default true). */
  finish?: boolean;
  failedTest?: { name: string; message: string };
  failureReason?: string;
}

function toolOf(call: HandCall): string {
  return call.tool ?? 'shell';
}

function argumentsOf(call: HandCall): Record<string, unknown> {
  return call.arguments ?? { command: call.command ?? '' };
}

/** The run as events, one agent step per call (steps 1, 2, …), then the finish call, verifier and end. */
export function handRunEvents(run: HandRun): TraceEvent[] {
  const events: TraceEvent[] = [
    {
      id: `${run.runId}#start`,
      runId: run.runId,
      type: 'run-start',
      data: {
        task: run.task,
        model: run.model ?? 'model-a',
        split: 'held-in',
        ...(run.instruction ? { instruction: run.instruction } : {}),
      },
    },
  ];
  const calls: HandCall[] = [...run.calls];
  if (run.finish !== false) calls.push({ tool: 'finish', arguments: { summary: 'done' }, output: 'Finished.' });
  calls.forEach((call, index) => {
    const step = index + 1;
    const tool = toolOf(call);
    events.push(
      {
        id: `${run.runId}#step-${step}`,
        runId: run.runId,
        type: 'step-create',
        data: { step, role: 'agent', message: `Step ${step}` },
      },
      {
        id: `${run.runId}#call-${step}`,
        runId: run.runId,
        type: 'tool-call',
        data: {
          step,
          callId: `c${step}`,
          tool,
          arguments: argumentsOf(call),
          ...(tool === 'shell' ? { command: call.command ?? '' } : {}),
        },
      },
      {
        id: `${run.runId}#result-${step}`,
        runId: run.runId,
        type: 'tool-result',
        data: {
          step,
          callId: `c${step}`,
          output: call.output ?? '',
          ...(call.exitCode !== undefined ? { exitCode: call.exitCode } : tool === 'shell' ? { exitCode: 0 } : {}),
        },
      },
    );
  });
  events.push(...verdictEvents(run));
  return events;
}

/** The same run as shadow replay reads it from the log, without a database. */
export function handRun(run: HandRun): LoggedRun {
  const calls: HandCall[] = [...run.calls];
  if (run.finish !== false) calls.push({ tool: 'finish', arguments: { summary: 'done' }, output: 'Finished.' });
  const passed = run.outcome === 'passed';
  return {
    runId: run.runId,
    task: run.task,
    model: run.model ?? 'model-a',
    outcome: run.outcome,
    ...(run.failureReason ? { failureReason: run.failureReason } : {}),
    ...(run.instruction ? { instruction: run.instruction } : {}),
    turns: calls.map((call, index) => {
      const step = index + 1;
      const tool = toolOf(call);
      const logged: LoggedCall = {
        step,
        callId: `c${step}`,
        tool,
        arguments: argumentsOf(call),
        ...(tool === 'shell' ? { command: call.command ?? '' } : {}),
        output: call.output ?? '',
        ...(call.exitCode !== undefined ? { exitCode: call.exitCode } : tool === 'shell' ? { exitCode: 0 } : {}),
      };
      return { step, message: `Step ${step}`, calls: [logged] };
    }),
    tests: [
      run.failedTest && !passed
        ? { name: run.failedTest.name, status: 'failed', message: run.failedTest.message }
        : { name: 'test_task', status: passed ? 'passed' : 'failed' },
    ],
  };
}
