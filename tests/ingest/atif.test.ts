import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TraceEvent } from '../../core/index.js';
import { atifAdapter, trajectoryToEvents } from '../../ingest/atif.js';
import { ingestFiles } from '../fuzz/regression.js';
import { collect } from '../support/collect.js';
import { hasSharedTraces, sharedTracesDir, sharedTracesSkipReason } from '../support/shared-traces.js';

const fixtures = resolve(import.meta.dirname, '../fixtures/atif');

function ofType<T extends TraceEvent['type']>(events: TraceEvent[], type: T, runId?: string) {
  return events.filter(
    (event): event is Extract<TraceEvent, { type: T }> =>
      event.type === type && (runId === undefined || event.runId === runId),
  );
}

function runIds(events: TraceEvent[]): string[] {
  return ofType(events, 'run-start').map((event) => event.runId);
}

describe('atif adapter: one trajectory', () => {
  it('maps every step, tool call and observation of a trajectory to valid events', async () => {
    const file = join(fixtures, 'multi-step.json');
    const { events, invalid, rejects } = await collect(atifAdapter, file, false);
    expect(invalid).toEqual([]);
    expect(rejects).toEqual([]);
    expect(runIds(events)).toHaveLength(1);

    const [start] = ofType(events, 'run-start');
    expect(start?.runId).toMatch(/^atif:fixture-multi-step-0001:[0-9a-f]{12}$/);
    expect(start?.time).toBe('2025-11-05T10:00:00Z');
    expect(start?.data).toMatchObject({
      task: 'count-lines',
      model: 'openai/gpt-4o',
      agent: 'terminus-2',
      agentVersion: '2.0.0',
      metadata: {
        schemaVersion: 'ATIF-v1.7',
        sessionId: 'fixture-multi-step-0001',
        toolNames: ['bash_command', 'str_replace_editor'],
        cachedTokens: 300,
      },
    });

    const steps = ofType(events, 'step-create');
    expect(steps.map((step) => [step.data.step, step.data.role])).toEqual([
      [1, 'system'],
      [2, 'user'],
      [3, 'agent'],
      [4, 'agent'],
      [5, 'agent'],
    ]);
    expect(steps[1]?.data.message).toBe(
      'Count the lines of data.csv and write the number to answer.txt.\n[image: images/screenshot.png (image/png)]',
    );
    expect(steps[2]?.data).toMatchObject({
      model: 'gpt-4o-2024-08-06',
      reasoning: 'wc -l gives the count; check the header first.',
      promptTokens: 700,
      completionTokens: 120,
      cachedTokens: 300,
      costUsd: 0.0071,
      extra: {
        reasoning_effort: 'medium',
        llm_call_count: 1,
        metrics_extra: { reasoning_tokens: 40 },
        tool_call_extra: { call_wc: { retry: 0 } },
        observation_extra: { call_wc: { exit_code: 0 } },
      },
    });
    expect(steps[2]?.source).toEqual({ format: 'atif', file, position: 'steps[2]' });
    expect(steps[3]?.data.model).toBe('openai/gpt-4o');
    expect(steps[4]?.data).toMatchObject({ copiedContext: false, extra: { final: true } });

    const calls = ofType(events, 'tool-call');
    expect(calls.map((call) => [call.data.callId, call.data.tool, call.data.command])).toEqual([
      ['call_head', 'bash_command', 'head -3 data.csv'],
      ['call_wc', 'bash_command', 'wc -l data.csv'],
      ['call_write', 'str_replace_editor', undefined],
    ]);
    expect(calls[1]?.id).toBe(`${start?.runId}#call-call_wc`);
    expect(calls[1]?.source?.position).toBe('steps[2].tool_calls[1]');

    const results = ofType(events, 'tool-result');
    expect(results.map((result) => [result.data.callId, result.data.output])).toEqual([
      ['call_head', 'id,value\n1,a\n2,b'],
      ['call_wc', '42 data.csv'],
      // The only call of its step: a result without `source_call_id` belongs to it.
      ['call_write', 'File created successfully at: /app/answer.txt'],
    ]);
    expect(results[1]?.data.exitCode).toBe(0);

    const [end] = ofType(events, 'run-end');
    expect(end?.data).toEqual({
      outcome: 'unknown',
      promptTokens: 1500,
      completionTokens: 210,
      costUsd: 0.0123,
      startedAt: '2025-11-05T10:00:00Z',
      endedAt: '2025-11-05T10:00:09Z',
    });
  });

  it('gives the same ids when the same file is read again', async () => {
    const file = join(fixtures, 'multi-step.json');
    const first = await collect(atifAdapter, file, false);
    const second = await collect(atifAdapter, file, false);
    expect(second.events.map((event) => event.id)).toEqual(first.events.map((event) => event.id));
    expect(new Set(first.events.map((event) => event.id)).size).toBe(first.events.length);
  });

  it('keeps the results of a step with several calls and no call ids apart', () => {
    const trajectory = {
      schema_version: 'ATIF-v1.7',
      agent: { name: 'terminus-2', version: '2.0.0' },
      steps: [
        {
          step_id: 1,
          source: 'agent',
          message: 'two commands, one screen',
          tool_calls: [
            { tool_call_id: 'a', function_name: 'bash_command', arguments: { keystrokes: 'cd /app\n' } },
            { tool_call_id: 'b', function_name: 'bash_command', arguments: { keystrokes: 'ls\n' } },
          ],
          observation: { results: [{ content: 'main.py' }] },
        },
      ],
    };
    const { items } = trajectoryToEvents(trajectory, { format: 'atif', file: '/traces/t.json', runId: 'atif:t' });
    const result = items.find((item) => item.kind === 'event' && (item.event as TraceEvent).type === 'tool-result');
    expect(result?.kind === 'event' && result.event).toMatchObject({
      id: 'atif:t#result-1-0',
      data: { step: 1, output: 'main.py' },
    });
    expect(result?.kind === 'event' && (result.event as { data: { callId?: string } }).data.callId).toBeUndefined();
  });
});

describe('atif adapter: linked trajectories', () => {
  it('reads continuations and sub-agents, embedded or by path, as runs linked to their parent', async () => {
    const file = join(fixtures, 'linked', 'trajectory.json');
    const { events, invalid, rejects } = await collect(atifAdapter, file, false);
    expect(invalid).toEqual([]);
    expect(rejects).toEqual([]);

    const starts = ofType(events, 'run-start');
    const root = starts.find((start) => start.data.parentRunId === undefined);
    expect(root?.runId).toMatch(/^atif:root:[0-9a-f]{12}$/);
    const rootId = root?.runId ?? '';
    const links = starts
      .filter((start) => start.data.parentRunId !== undefined)
      .map((start) => [
        start.runId,
        start.data.parentRunId,
        start.data.relation,
        start.data.agent,
        start.data.metadata?.parentStep,
      ]);
    expect(links).toEqual([
      [`${rootId}/explore-1`, rootId, 'subagent', 'explorer', 2],
      [`${rootId}/subagents/review.json`, rootId, 'subagent', 'reviewer', 3],
      [`${rootId}/trajectory.cont-1.json`, rootId, 'continuation', 'planner', undefined],
    ]);
    const review = starts.find((start) => start.runId === `${rootId}/subagents/review.json`);
    expect(review?.data.metadata?.referenceExtra).toEqual({ summary: 'review' });
    // Every run inherits the task of the run it belongs to.
    expect(new Set(starts.map((start) => start.data.task))).toEqual(new Set(['linked']));

    expect(ofType(events, 'step-create', rootId)).toHaveLength(3);
    expect(ofType(events, 'step-create', `${rootId}/explore-1`)).toHaveLength(2);
    expect(ofType(events, 'step-create', `${rootId}/subagents/review.json`)).toHaveLength(2);
    const continuationSteps = ofType(events, 'step-create', `${rootId}/trajectory.cont-1.json`);
    expect(continuationSteps.map((step) => step.data.copiedContext)).toEqual([true, undefined]);

    const [explorerCall] = ofType(events, 'tool-call', `${rootId}/explore-1`);
    expect(explorerCall?.data.command).toBe('pytest -x -q');
    expect(explorerCall?.source?.position).toBe('subagent_trajectories[0].steps[1].tool_calls[0]');
    const [explorerResult] = ofType(events, 'tool-result', `${rootId}/explore-1`);
    expect(explorerResult?.data).toMatchObject({
      callId: 'call_pytest',
      output: 'FAILED tests/test_build.py::test_link',
      exitCode: 1,
    });
    const [fix] = ofType(events, 'tool-call', `${rootId}/trajectory.cont-1.json`);
    expect(fix?.data.command).toBe("sed -i 's/-lfoo/-lbar/' Makefile && make");
    expect(fix?.source?.file).toBe(join(fixtures, 'linked', 'trajectory.cont-1.json'));

    // A reference to a file that is not there is kept on the run, not rejected: the rest is still usable.
    expect(root?.data.metadata?.unresolvedReferences).toEqual([
      {
        position: 'steps[2].observation.results[0].subagent_trajectory_ref[1]',
        reference: 'trajectory.missing-questions.json',
        reason: 'file not found beside the trajectory',
      },
    ]);
    // A system step that only hands work to sub-agents has no tool output of its own.
    expect(ofType(events, 'tool-result', rootId).map((result) => result.data.step)).toEqual([2]);
    expect(ofType(events, 'run-end')).toHaveLength(4);
  });

  it('claims ATIF files but leaves a continuation to the trajectory beside it', () => {
    const claims = (name: string) =>
      atifAdapter.claimsFile?.(join(fixtures, name), readFileSync(join(fixtures, name), 'utf8').slice(0, 4096));
    expect(claims('multi-step.json')).toBe(true);
    expect(claims('linked/trajectory.json')).toBe(true);
    expect(claims('linked/trajectory.cont-1.json')).toBe(false);
    expect(claims('linked/subagents/review.json')).toBe(true);
    expect(claims('not-atif.json')).toBe(false);
  });
});

describe('atif adapter: bad input', () => {
  it('rejects a truncated file with its position and a reason to act on', async () => {
    const file = join(fixtures, 'truncated.json');
    const { events, rejects } = await collect(atifAdapter, file, false);
    expect(events).toEqual([]);
    expect(rejects).toHaveLength(1);
    expect(rejects[0]).toMatchObject({ format: 'atif', file, position: 'end of file' });
    expect(rejects[0]?.reason).toMatch(
      /^truncated JSON: the file ends before the document does .*copy or export it again$/,
    );
    expect(rejects[0]?.raw).toBe(readFileSync(file, 'utf8'));
  });

  it('rejects a bad step or tool call on its own and loads the rest', async () => {
    const file = join(fixtures, 'bad-items.json');
    const { events, invalid, rejects } = await collect(atifAdapter, file, false);
    expect(invalid).toEqual([]);
    expect(rejects.map((reject) => [reject.position, reject.reason])).toEqual([
      ['steps[1]', 'step does not match ATIF: source: Invalid option: expected one of "system"|"user"|"agent"'],
      [
        'steps[2].tool_calls[0]',
        'tool call does not match ATIF: function_name: Invalid input: expected string, received undefined',
      ],
    ]);
    expect(JSON.parse(rejects[0]?.raw ?? '{}')).toMatchObject({ step_id: 2, source: 'robot' });
    expect(ofType(events, 'step-create').map((step) => step.data.step)).toEqual([1, 3]);
    expect(ofType(events, 'tool-call').map((call) => call.data.command)).toEqual(["echo 'Hello' > hello.txt"]);
    expect(ofType(events, 'tool-result').map((result) => [result.data.callId, result.data.output])).toEqual([
      ['c2', ''],
    ]);
  });

  it('rejects JSON that is no trajectory', async () => {
    const file = join(fixtures, 'not-atif.json');
    const { events, rejects } = await collect(atifAdapter, file, false);
    expect(events).toEqual([]);
    expect(rejects.map((reject) => [reject.position, reject.reason])).toEqual([
      ['(root)', 'not an ATIF trajectory: steps: Invalid input: expected array, received undefined'],
    ]);
  });
});

describe.skipIf(!hasSharedTraces)(
  `atif adapter on the real traces (${hasSharedTraces ? 'present' : sharedTracesSkipReason})`,
  () => {
    // The folder also holds the raw OpenHands, gemini-cli and mini-swe-agent logs that ATIF was converted from.
    const atifFiles = (hasSharedTraces ? listJson(join(sharedTracesDir, 'atif')) : []).filter((file) =>
      /"schema_version"\s*:\s*"ATIF/.test(readFileSync(file, 'utf8').slice(0, 4096)),
    );

    it('finds the real ATIF files', () => {
      expect(atifFiles.length).toBeGreaterThanOrEqual(5);
    });

    it.each(atifFiles.map((file) => [file.slice(sharedTracesDir.length + 1), file]))(
      '%s loads with no invalid events or rejects',
      async (_name, file) => {
        const trajectory = JSON.parse(readFileSync(file, 'utf8')) as { steps: { tool_calls?: unknown[] }[] };
        const { events, invalid, rejects } = await collect(atifAdapter, file, false);
        expect(invalid).toEqual([]);
        expect(rejects).toEqual([]);
        const root = ofType(events, 'run-start').find((start) => start.data.parentRunId === undefined);
        expect(root).toBeDefined();
        const rootId = root?.runId ?? '';
        expect(ofType(events, 'step-create', rootId)).toHaveLength(trajectory.steps.length);
        const toolCalls = trajectory.steps.reduce((total, step) => total + (step.tool_calls?.length ?? 0), 0);
        expect(ofType(events, 'tool-call', rootId)).toHaveLength(toolCalls);
        expect(ofType(events, 'run-end', rootId)).toHaveLength(1);
      },
    );

    it('links the golden context-summarisation trajectory to its summary sub-trajectory', async () => {
      const file = join(sharedTracesDir, 'atif/golden-terminus-2/hello-world-context-summarization.trajectory.json');
      const { events } = await collect(atifAdapter, file, false);
      const sub = ofType(events, 'run-start').find((start) => start.data.relation === 'subagent');
      expect(sub?.runId).toMatch(/\/trajectory\.summarization-1-summary\.json$/);
      expect(sub?.data.metadata?.parentStep).toBe(5);
      expect(ofType(events, 'step-create', sub?.runId)).toHaveLength(5);
      const commands = ofType(events, 'tool-call').map((call) => call.data.command);
      expect(commands).toContain("printf 'Hello, world!\\n' > hello.txt");
    });
  },
);

function listJson(directory: string): string[] {
  return readdirSync(directory).flatMap((name) => {
    const path = join(directory, name);
    if (statSync(path).isDirectory()) return listJson(path);
    return name.endsWith('.json') ? [path] : [];
  });
}

describe('ATIF: bugs found by fuzzing (tests/fuzz)', () => {
  const trajectory =
    '{"schema_version":"ATIF-v1.6","session_id":"s1","agent":{"name":"a","version":"1","model_name":"m"},"steps":[{"step_id":1,"source":"user","message":"hi"},{"step_id":2,"source":"agent","message":"ok","tool_calls":[{"tool_call_id":"c1","function_name":"bash","arguments":{"command":"ls"}}]}]}';

  it('rejects a trajectory that is not valid UTF-8, naming the byte, instead of loading replacement characters', async () => {
    const bytes = Buffer.from(trajectory, 'utf8');
    const broken = Buffer.concat([bytes.subarray(0, 60), Buffer.from([0xc3, 0x28]), bytes.subarray(60)]);
    const { events, rejects } = await ingestFiles({ 'a.trajectory.json': broken, 'b.trajectory.json': trajectory });
    expect(rejects).toHaveLength(1);
    expect(rejects[0]?.file).toMatch(/a\.trajectory\.json$/);
    expect(rejects[0]?.position).toBe('line 1 column 61');
    expect(rejects[0]?.reason).toMatch(/^not valid UTF-8: byte 0xC3 at byte offset 60/);
    expect(events.filter((event) => event.source_file.endsWith('b.trajectory.json'))).toHaveLength(5);
  });

  it('rejects a step whose tool arguments are nested thousands of levels deep instead of crashing the import', async () => {
    const deep = `${'['.repeat(5000)}1${']'.repeat(5000)}`;
    const text = trajectory.replace('{"command":"ls"}', `{"command":${deep}}`);
    const { events, rejects } = await ingestFiles({ 'deep.trajectory.json': text });
    expect(rejects.map((reject) => [reject.position, reject.reason])).toEqual([
      [
        'steps[1].tool_calls[0]',
        'a value in this record is nested deeper than 256 levels, which cannot be stored; flatten it or leave it out',
      ],
    ]);
    expect(events.map((event) => event.type)).toEqual(['run-start', 'step-create', 'step-create', 'run-end']);
  });

  it('rejects the continuation of a rejected trajectory instead of dropping it without a word', async () => {
    const { rejects } = await ingestFiles({
      'run/trajectory.json': trajectory.slice(0, 40),
      'run/trajectory.cont-1.json': trajectory,
    });
    expect(rejects.map((reject) => [reject.file.split('/').at(-1), reject.position])).toEqual([
      ['trajectory.cont-1.json', '(file)'],
      ['trajectory.json', 'end of file'],
    ]);
    expect(rejects[0]?.reason).toBe(
      'not read: it continues trajectory.json, which was rejected; fix that file and import again',
    );
  });

  it("imports a sub-agent file referenced by path once, as its parent's linked run, and counts its reject once", async () => {
    const linked = join(fixtures, 'linked');
    const files = {
      'linked/trajectory.json': readFileSync(join(linked, 'trajectory.json')),
      'linked/trajectory.cont-1.json': readFileSync(join(linked, 'trajectory.cont-1.json')),
      'linked/subagents/review.json': readFileSync(join(linked, 'subagents/review.json')),
    };
    const whole = await ingestFiles(files);
    const reviewEvents = whole.events.filter((event) => event.source_file.endsWith('subagents/review.json'));
    // run-start, two steps, run-end: once, not a second time as a standalone run.
    expect(reviewEvents.map((event) => event.type)).toEqual(['run-start', 'step-create', 'step-create', 'run-end']);
    expect(whole.summary.totals.units).toBe(1);

    const review = files['linked/subagents/review.json'].toString('utf8');
    const broken = await ingestFiles({ ...files, 'linked/subagents/review.json': review.slice(0, 120) });
    expect(broken.rejects.map((reject) => [reject.file.split('/').slice(-2).join('/'), reject.position])).toEqual([
      ['subagents/review.json', 'end of file'],
    ]);
    expect(broken.summary.totals.rejects).toBe(broken.rejects.length);
  });

  it('still imports a referenced sub-agent file on its own when its parent is not imported or cannot be read', async () => {
    const review = readFileSync(join(fixtures, 'linked/subagents/review.json'));
    const alone = await ingestFiles({ 'subagents/review.json': review });
    expect(alone.events.map((event) => event.type)).toEqual(['run-start', 'step-create', 'step-create', 'run-end']);
    const brokenParent = await ingestFiles({
      'linked/trajectory.json': readFileSync(join(fixtures, 'linked/trajectory.json')).subarray(0, 200),
      'linked/subagents/review.json': review,
    });
    expect(brokenParent.events.filter((event) => event.source_file.endsWith('review.json'))).toHaveLength(4);
    expect(brokenParent.rejects.map((reject) => reject.file.split('/').at(-1))).toEqual(['trajectory.json']);
  });
});
