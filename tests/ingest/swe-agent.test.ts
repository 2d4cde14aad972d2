import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TraceEvent } from '../../core/index.js';
import { decideSweAgentOutcome, sweAgentAdapter } from '../../ingest/swe-agent.js';
import { ingestFiles } from '../fuzz/regression.js';
import { collect } from '../support/collect.js';
import { hasSharedTraces, sharedTracesDir } from '../support/shared-traces.js';

const fixtures = resolve(import.meta.dirname, '../fixtures/swe-agent');
const trajectory = (name: string) => join(fixtures, 'demo-model/trajs', `${name}.traj`);

function ofType<T extends TraceEvent['type']>(events: TraceEvent[], type: T) {
  return events.filter((event): event is Extract<TraceEvent, { type: T }> => event.type === type);
}

async function parseRun(file: string, options = {}) {
  const result = await collect(sweAgentAdapter, file, false, options);
  expect(result.invalid).toEqual([]);
  const [start] = ofType(result.events, 'run-start');
  const [end] = ofType(result.events, 'run-end');
  return { ...result, start, end };
}

describe('sweAgentAdapter', () => {
  it('claims .traj files only', () => {
    expect(sweAgentAdapter.claimsFile?.('/runs/x/trajs/a__b-1.traj', '{')).toBe(true);
    expect(sweAgentAdapter.claimsFile?.('/runs/x/results/results.json', '{')).toBe(false);
  });

  it('turns a resolved trajectory into a passed run with its steps, commands and observations', async () => {
    const { events, rejects, start, end } = await parseRun(trajectory('acme__widget-1'));
    expect(rejects).toEqual([]);
    const runId = 'swe-agent:demo-model:acme__widget-1';
    expect(start).toMatchObject({
      id: `${runId}#start`,
      runId,
      source: { format: 'swe-agent', file: trajectory('acme__widget-1') },
      data: { task: 'acme__widget-1', model: 'demo-model-v1', agent: 'SWE-agent' },
    });
    expect(start?.data.instruction).toContain('Division by zero in widget.ratio()');
    expect(end?.data).toMatchObject({ outcome: 'passed', promptTokens: 5200, completionTokens: 310, costUsd: 0.41 });

    const steps = ofType(events, 'step-create');
    expect(steps.map((step) => step.data.step)).toEqual([1, 2, 3]);
    expect(steps[0]?.data.reasoning).toBe("Let's find the file that defines ratio().\n");
    expect(steps[0]?.data.message).toContain('find_file "widget.py"');
    expect(steps[1]?.data.extra).toEqual({
      state: { open_file: '/acme__widget/widget.py', working_dir: '/acme__widget' },
    });

    const calls = ofType(events, 'tool-call');
    expect(calls.map((call) => call.data.tool)).toEqual(['find_file', 'edit', 'submit']);
    expect(calls[0]).toMatchObject({
      id: `${runId}#call-1`,
      source: { position: 'trajectory[0]' },
      data: { step: 1, callId: '1', command: 'find_file "widget.py"', arguments: { command: 'find_file "widget.py"' } },
    });
    expect(calls[1]?.data.command).toBe('edit 1:1\n    return a/b if b else 0\nend_of_edit');
    const results = ofType(events, 'tool-result');
    expect(results[0]).toMatchObject({ id: `${runId}#result-1`, data: { step: 1, callId: '1' } });
    expect(results[0]?.data.output).toContain('/acme__widget/widget.py');
  });

  it('marks shell commands as bash and the cost-limit exit as a harness step without a tool call', async () => {
    const { events, end } = await parseRun(trajectory('acme__widget-2'));
    expect(end?.data).toMatchObject({
      outcome: 'failed',
      failureReason: 'unresolved (exit_status: submitted (exit_cost))',
    });
    const calls = ofType(events, 'tool-call');
    expect(calls.map((call) => [call.data.step, call.data.tool, call.data.command])).toEqual([
      [1, 'bash', 'python reproduce.py'],
      [2, 'open', 'open widget/parse.py'],
    ]);
    expect(ofType(events, 'tool-result')[0]?.data.output).toContain('IndexError: list index out of range');
    const exit = ofType(events, 'step-create').find((step) => step.data.step === 3);
    expect(exit?.data).toMatchObject({ role: 'system', message: 'Exit due to cost limit' });
    expect(exit?.data.extra).toMatchObject({ harnessExit: 'exit_cost', observation: 'Exited (autosubmitted)' });
  });

  it('fails an empty patch and keeps a step whose action is empty, without a tool call', async () => {
    const { events, end } = await parseRun(trajectory('acme__widget-3'));
    expect(end?.data).toMatchObject({ outcome: 'failed', failureReason: 'empty_patch (exit_status: exit_cost)' });
    expect(ofType(events, 'step-create')).toHaveLength(3);
    expect(ofType(events, 'tool-call').map((call) => call.data.step)).toEqual([1]);
  });

  it('marks an evaluation error invalid and rejects a malformed entry while keeping the others', async () => {
    const { events, rejects, end } = await parseRun(trajectory('acme__widget-4'));
    expect(end?.data).toMatchObject({ outcome: 'invalid', failureReason: 'evaluation_error' });
    expect(rejects).toHaveLength(1);
    expect(rejects[0]).toMatchObject({
      format: 'swe-agent',
      file: trajectory('acme__widget-4'),
      position: 'trajectory[1]',
    });
    expect(rejects[0]?.reason).toContain('action');
    expect(rejects[0]?.raw).toContain('without an action');
    expect(ofType(events, 'step-create').map((step) => step.data.step)).toEqual([1, 3]);
  });

  it('marks an incomplete run (no exit_status) invalid', async () => {
    const { end, start } = await parseRun(trajectory('acme__widget-5'));
    expect(end?.data).toMatchObject({ outcome: 'invalid', failureReason: 'incomplete' });
    expect(start?.data.metadata).toMatchObject({ exitStatus: null, evaluationLabel: 'incomplete' });
  });

  it('rejects a truncated trajectory with its file, position and raw text', async () => {
    const { events, rejects } = await collect(sweAgentAdapter, trajectory('acme__widget-6'), false);
    expect(events).toEqual([]);
    expect(rejects).toHaveLength(1);
    expect(rejects[0]).toMatchObject({ format: 'swe-agent', file: trajectory('acme__widget-6') });
    expect(rejects[0]?.position).toMatch(/^line \d+ column \d+$/);
    expect(rejects[0]?.reason).toContain('truncated');
    expect(rejects[0]?.raw).toBe(readFileSync(trajectory('acme__widget-6'), 'utf8'));
  });

  it('leaves the outcome unknown without an evaluation report and takes the model from the options', async () => {
    const file = join(fixtures, 'loose/acme__widget-7.traj');
    const { start, end } = await parseRun(file, { model: 'my-model', dataset: 'my-suite' });
    expect(start).toMatchObject({
      runId: 'swe-agent:loose:acme__widget-7',
      data: { model: 'my-model', dataset: 'my-suite' },
    });
    expect(end?.data.outcome).toBe('unknown');
    expect(end?.data.failureReason).toBeUndefined();
  });

  it('gives the same event ids on a second import', async () => {
    const first = await collect(sweAgentAdapter, trajectory('acme__widget-2'), false);
    const second = await collect(sweAgentAdapter, trajectory('acme__widget-2'), false);
    expect(second.events.map((event) => event.id)).toEqual(first.events.map((event) => event.id));
    expect(new Set(first.events.map((event) => event.id)).size).toBe(first.events.length);
  });

  it('decides outcomes from the evaluation lists, then from the exit status', () => {
    const results = { resolved: ['a'], unresolved_ids: ['b'], error_ids: ['c'] };
    expect(decideSweAgentOutcome('a', results, 'submitted').outcome).toBe('passed');
    expect(decideSweAgentOutcome('b', results, 'exit_format')).toMatchObject({
      outcome: 'failed',
      failureReason: 'unresolved (exit_status: exit_format)',
    });
    expect(decideSweAgentOutcome('c', results, 'submitted').outcome).toBe('invalid');
    expect(decideSweAgentOutcome('d', results, 'submitted').outcome).toBe('unknown');
    expect(decideSweAgentOutcome('d', undefined, null)).toEqual({ outcome: 'invalid', failureReason: 'incomplete' });
  });
});

describe.skipIf(!hasSharedTraces)('real SWE-agent trajectories', () => {
  const root = join(sharedTracesDir, 'swe-agent-multi-swe-bench-java');
  const expectedOutcome: Record<string, string> = {
    resolved: 'passed',
    unresolved: 'failed',
    empty_patch: 'failed',
    error: 'invalid',
    incomplete: 'invalid',
  };

  it('parses the 120 Multi-SWE-bench Java trajectories with outcomes matching index.csv', async () => {
    const rows = readFileSync(join(root, 'index.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.split(','))
      .map(([, model, instanceId, label, , path]) => ({ model, instanceId, label, path: path ?? '' }));
    expect(rows).toHaveLength(120);

    const resolved: Record<string, number> = {};
    let invalidEvents = 0;
    let rejected = 0;
    for (const row of rows) {
      const result = await collect(sweAgentAdapter, join(root, row.path), false);
      invalidEvents += result.invalid.length;
      rejected += result.rejects.length;
      const [start] = ofType(result.events, 'run-start');
      const [end] = ofType(result.events, 'run-end');
      expect(start?.data.task).toBe(row.instanceId);
      expect(start?.data.model).toBe(row.model);
      expect(end?.data.outcome, `${row.path} (${row.label})`).toBe(expectedOutcome[row.label ?? '']);
      if (end?.data.outcome === 'passed') resolved[row.model ?? ''] = (resolved[row.model ?? ''] ?? 0) + 1;
    }
    expect(invalidEvents).toBe(0);
    expect(rejected).toBe(0);
    expect(resolved).toEqual({ 'deepseek-chat-v2': 9, 'doubao-pro-128k': 1, 'gpt-4o-2024-05-13': 6 });
  });

  it('parses the SWE-agent example trajectory: five steps, tokens and cost, no verdict', async () => {
    const directory = join(sharedTracesDir, 'swe-agent-example');
    const file = join(directory, readdirSync(directory).find((name) => name.endsWith('.traj')) ?? '');
    const { events, end, rejects } = await parseRun(file);
    expect(rejects).toEqual([]);
    expect(ofType(events, 'step-create')).toHaveLength(5);
    expect(ofType(events, 'tool-call')[0]?.data).toMatchObject({
      tool: 'find_file',
      command: 'find_file "missing_colon.py"',
    });
    expect(end?.data).toMatchObject({
      outcome: 'unknown',
      promptTokens: 52861,
      completionTokens: 326,
      costUsd: 0.53839,
    });
  });
});

describe('SWE-agent: bugs found by fuzzing (tests/fuzz)', () => {
  const traj = JSON.stringify({
    trajectory: [{ action: 'ls', observation: 'a.py', thought: 'look' }],
    info: { exit_status: 'submitted' },
  });

  it('rejects a broken results.json once per import, so that the summary counts what ingest_rejects holds', async () => {
    const { summary, rejects, events } = await ingestFiles({
      'run/trajs/x__y-1.traj': traj,
      'run/trajs/x__y-2.traj': traj,
      'run/trajs/x__y-3.traj': traj,
      'run/results/results.json': '{"resolved": [',
    });
    expect(rejects).toHaveLength(1);
    expect(rejects[0]?.reason).toMatch(/^invalid evaluation results JSON, outcomes left unknown/);
    expect(summary.totals.rejects).toBe(1);
    expect(events.filter((event) => event.type === 'run-start')).toHaveLength(3);
  });

  it('rejects a .traj file that is not valid UTF-8 with its position', async () => {
    const bytes = Buffer.from(traj);
    const broken = Buffer.concat([bytes.subarray(0, 30), Buffer.from([0xff]), bytes.subarray(30)]);
    const { rejects, events } = await ingestFiles({ 'run/trajs/x__y-1.traj': broken });
    expect(events).toHaveLength(0);
    expect(rejects.map((reject) => reject.position)).toEqual(['line 1 column 31']);
    expect(rejects[0]?.reason).toMatch(/^not valid UTF-8: byte 0xFF at byte offset 30/);
  });
});
