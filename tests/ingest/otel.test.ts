import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TraceEvent } from '../../core/index.js';
import { otelAdapter, parseOtlpTraces } from '../../ingest/otel.js';
import { ingestFiles } from '../fuzz/regression.js';
import { collect } from '../support/collect.js';

const fixtures = resolve(import.meta.dirname, '../fixtures/otel');
const fixture = (name: string) => join(fixtures, name);

function ofType<T extends TraceEvent['type']>(events: TraceEvent[], type: T) {
  return events.filter((event): event is Extract<TraceEvent, { type: T }> => event.type === type);
}

function head(file: string): string {
  return readFileSync(file, 'utf8').slice(0, 4096);
}

describe('otelAdapter: GenAI semantic conventions', () => {
  const file = fixture('genai-agent.json');
  const runId = 'otel:4bf92f3577b34da6a3ce929d0e0e4736';

  it('claims OTLP/JSON exports and nothing else', () => {
    expect(otelAdapter.claimsFile?.(file, head(file))).toBe(true);
    expect(
      otelAdapter.claimsFile?.(fixture('openinference-agent.jsonl'), head(fixture('openinference-agent.jsonl'))),
    ).toBe(true);
    expect(otelAdapter.claimsFile?.('/x/trajectory.json', '{"schema_version": "ATIF-v1.7", "steps": []}')).toBe(false);
    expect(otelAdapter.claimsFile?.('/x/events.ndjson', '{"id":"a","type":"run-start"}\n')).toBe(false);
  });

  it('makes one run per trace, with task, model, agent and instruction from the root agent span', async () => {
    const { events, invalid, rejects } = await collect(otelAdapter, file, false);
    expect(invalid).toEqual([]);
    expect(rejects).toEqual([]);
    const starts = ofType(events, 'run-start');
    expect(starts.map((start) => start.runId)).toEqual([runId, 'otel:5b8efff798038103d269b633813fc60c']);
    expect(starts[0]).toMatchObject({
      id: `${runId}#start`,
      time: '2025-01-15T10:00:00.000Z',
      source: { format: 'otel', file, position: 'resourceSpans[0].scopeSpans[1].spans[1]' },
      data: {
        task: 'widget-failing-test',
        dataset: 'fixture-suite',
        model: 'gpt-4o',
        agent: 'repo-fixer',
        agentVersion: '0.3.0',
        instruction: 'Fix the failing test in tests/test_widget.py',
      },
    });
  });

  it('orders chat spans by start time into steps with their tokens, whatever the order in the file', async () => {
    const { events } = await collect(otelAdapter, file, false);
    const steps = ofType(events, 'step-create').filter((step) => step.runId === runId);
    expect(steps.map((step) => [step.data.step, step.id])).toEqual([
      [1, `${runId}#step-1111111111111111`],
      [2, `${runId}#step-3333333333333333`],
      [3, `${runId}#step-5555555555555555`],
    ]);
    expect(steps[0]?.data).toMatchObject({
      role: 'agent',
      message: 'Let me look at the repository first.',
      model: 'gpt-4o-2024-08-06',
      promptTokens: 1200,
      completionTokens: 45,
      cachedTokens: 1024,
    });
    expect(steps[1]?.data.reasoning).toBe('The test imports widget.ratio; run it to see the failure.');
    expect(steps[2]?.data.message).toBe('The test still fails with ZeroDivisionError; I could not fix it.');
  });

  it('turns tool spans into calls with their command and results, an ERROR status into an error', async () => {
    const { events } = await collect(otelAdapter, file, false);
    const calls = ofType(events, 'tool-call').filter((call) => call.runId === runId);
    expect(calls.map((call) => [call.id, call.data.step, call.data.tool, call.data.command])).toEqual([
      [`${runId}#call-call_ls`, 1, 'bash', 'ls -la'],
      [`${runId}#call-call_pytest`, 2, 'bash', 'python -m pytest tests/test_widget.py'],
    ]);
    const results = ofType(events, 'tool-result').filter((result) => result.runId === runId);
    expect(results[0]?.data).toEqual({ step: 1, callId: 'call_ls', output: 'README.md\nsrc\ntests', exitCode: 0 });
    expect(results[1]?.data).toMatchObject({
      callId: 'call_pytest',
      exitCode: 1,
      error: 'command exited with status 1',
    });
    expect(results[1]?.data.output).toContain('ZeroDivisionError');
  });

  it('takes the outcome from selfharness.outcome, else leaves it unknown with the error as the reason', async () => {
    const { events } = await collect(otelAdapter, file, false);
    const ends = ofType(events, 'run-end');
    expect(ends[0]).toMatchObject({
      id: `${runId}#end`,
      data: {
        outcome: 'failed',
        failureReason: 'tests_failed',
        startedAt: '2025-01-15T10:00:00.000Z',
        endedAt: '2025-01-15T10:00:26.000Z',
      },
    });
    expect(ends[1]?.data).toMatchObject({ outcome: 'unknown', failureReason: 'openai.RateLimitError' });
  });
});

describe('otelAdapter: OpenInference', () => {
  const file = fixture('openinference-agent.jsonl');
  const runId = 'otel:0af7651916cd43dd8448eb211c80319c';

  it('puts a trace together across the lines of a .jsonl and passes it on selfharness.reward', async () => {
    const { events, invalid, rejects } = await collect(otelAdapter, file, false);
    expect(invalid).toEqual([]);
    expect(rejects).toEqual([]);
    expect(ofType(events, 'run-start')).toHaveLength(1);
    expect(ofType(events, 'run-start')[0]).toMatchObject({
      runId,
      source: { position: 'line 2: resourceSpans[0].scopeSpans[0].spans[2]' },
      data: {
        task: 'setup-python-requires',
        model: 'claude-sonnet-4',
        agent: 'CodeAgent.run',
        instruction: 'Make setup.py declare python_requires>=3.9',
      },
    });
    expect(ofType(events, 'run-end')[0]?.data).toMatchObject({ outcome: 'passed', reward: 1 });
  });

  it('reads LLM spans as steps with tokens, cached tokens and cost', async () => {
    const { events } = await collect(otelAdapter, file, false);
    const steps = ofType(events, 'step-create');
    expect(steps.map((step) => step.data.message)).toEqual([
      "I'll read setup.py.",
      '',
      'setup.py now declares python_requires>=3.9.',
    ]);
    expect(steps[0]?.data).toMatchObject({
      promptTokens: 900,
      completionTokens: 70,
      cachedTokens: 512,
      costUsd: 0.0041,
    });
  });

  it('matches a TOOL span without a call id to the call its step requested; keeps an unexecuted call', async () => {
    const { events } = await collect(otelAdapter, file, false);
    const calls = ofType(events, 'tool-call');
    expect(calls.map((call) => [call.data.callId, call.data.step, call.data.tool])).toEqual([
      ['toolu_01', 1, 'bash'],
      ['toolu_02', 2, 'apply_patch'],
    ]);
    expect(calls[0]?.data).toMatchObject({ arguments: { command: 'cat setup.py' }, command: 'cat setup.py' });
    const results = ofType(events, 'tool-result');
    expect(results.map((result) => result.data.callId)).toEqual(['toolu_01']);
    expect(results[0]?.data.output).toBe("from setuptools import setup\nsetup(name='acme')");
  });
});

describe('otelAdapter: bad input', () => {
  it('rejects a truncated export with its file, position and raw text', async () => {
    const file = fixture('truncated.json');
    const { events, rejects } = await collect(otelAdapter, file, false);
    expect(events).toEqual([]);
    expect(rejects).toHaveLength(1);
    expect(rejects[0]).toMatchObject({ format: 'otel', file, raw: readFileSync(file, 'utf8') });
    expect(rejects[0]?.position).toMatch(/^line \d+ column \d+$/);
    expect(rejects[0]?.reason).toContain('truncated');
  });

  it('rejects a malformed span, a bad line, a non-export and a cut-off last line, and loads the rest', async () => {
    const file = fixture('malformed.jsonl');
    const { events, invalid, rejects } = await collect(otelAdapter, file, false);
    expect(invalid).toEqual([]);
    expect(rejects.map((reject) => [reject.position, reject.reason.split(':')[0]])).toEqual([
      ['line 1: resourceSpans[0].scopeSpans[0].spans[1]', 'malformed span'],
      ['line 2', 'invalid JSON'],
      ['line 3: $', 'not an OTLP/JSON trace export'],
      ['line 4', 'truncated last line (the file ends mid-export)'],
    ]);
    expect(rejects[0]?.reason).toContain('traceId');
    expect(rejects.every((reject) => reject.file === file && reject.raw !== '')).toBe(true);
    expect(events.map((event) => event.type)).toEqual(['run-start', 'run-end']);
  });

  it('rejects an outcome attribute that names no outcome and loads the run as unknown', () => {
    const root = {
      traceId: '0123456789abcdef0123456789abcdef',
      spanId: '0123456789abcdef',
      name: 'invoke_agent',
      startTimeUnixNano: '1736935200000000000',
      endTimeUnixNano: '1736935201000000000',
      attributes: [{ key: 'selfharness.outcome', value: { stringValue: 'success' } }],
    };
    const items = parseOtlpTraces({ resourceSpans: [{ scopeSpans: [{ spans: [root] }] }] }, 'POST /v1/traces');
    const rejects = items.flatMap((item) => (item.kind === 'reject' ? [item.reject] : []));
    expect(rejects).toEqual([
      {
        format: 'otel',
        file: 'POST /v1/traces',
        position: 'resourceSpans[0].scopeSpans[0].spans[0]',
        reason:
          'selfharness.outcome must be one of passed, failed, invalid, unknown, got "success"; the run is loaded with outcome unknown',
        raw: 'success',
      },
    ]);
    const end = items.find((item) => item.kind === 'event' && (item.event as TraceEvent).type === 'run-end');
    expect(end?.kind === 'event' && TraceEvent.parse(end.event).data).toMatchObject({ outcome: 'unknown' });
  });

  it('answers a body that is not an export with one reject', () => {
    const items = parseOtlpTraces(['not', 'an', 'export'], 'POST /v1/traces');
    expect(items).toEqual([
      {
        kind: 'reject',
        reject: {
          format: 'otel',
          file: 'POST /v1/traces',
          position: '$',
          reason: 'not an OTLP/JSON trace export: expected {"resourceSpans": [...]}',
          raw: '["not","an","export"]',
        },
      },
    ]);
  });
});

describe('otelAdapter: a trace split across files', () => {
  const directory = fixture('split-export');
  const runId = 'otel:7d2f5c1e9a8b4f3d2c1b0a9f8e7d6c5b';

  it('claims a folder of exports and orders its spans by start time across the files', async () => {
    expect(otelAdapter.claimsDirectory?.(directory, readdirSync(directory))).toBe(true);
    expect(otelAdapter.claimsDirectory?.(fixtures, readdirSync(fixtures))).toBe(false);
    const { events, invalid, rejects } = await collect(otelAdapter, directory, true);
    expect(invalid).toEqual([]);
    expect(rejects).toEqual([]);
    expect(ofType(events, 'step-create').map((step) => [step.data.step, step.source?.file])).toEqual([
      [1, join(directory, 'part-2.json')],
      [2, join(directory, 'part-1.json')],
    ]);
    expect(ofType(events, 'tool-call')[0]?.data).toMatchObject({ step: 1, tool: 'shell', command: 'cat notes.txt' });
    expect(ofType(events, 'run-end')[0]?.data.outcome).toBe('passed');
  });

  it('gives the same event ids when each export is parsed on its own, the run only with the root span', async () => {
    const whole = await collect(otelAdapter, directory, true);
    const parts = ['part-1.json', 'part-2.json'].map((name) =>
      parseOtlpTraces(JSON.parse(readFileSync(join(directory, name), 'utf8')), join(directory, name)),
    );
    const ids = (items: ReturnType<typeof parseOtlpTraces>) =>
      items.flatMap((item) => (item.kind === 'event' ? [(item.event as TraceEvent).id] : []));
    expect(ids(parts[0] ?? [])).not.toContain(`${runId}#start`);
    expect(ids(parts[1] ?? [])).toContain(`${runId}#start`);
    expect(new Set([...ids(parts[0] ?? []), ...ids(parts[1] ?? [])])).toEqual(
      new Set(whole.events.map((event) => event.id)),
    );
    for (const item of parts.flat()) {
      if (item.kind === 'event') expect(TraceEvent.safeParse(item.event).success).toBe(true);
    }
  });
});

describe('OTel: bugs found by fuzzing (tests/fuzz)', () => {
  const exportLine = JSON.stringify({
    resourceSpans: [
      {
        scopeSpans: [
          {
            spans: [{ traceId: 't1', spanId: 's1', name: 'invoke_agent a', startTimeUnixNano: '1700000000000000000' }],
          },
        ],
      },
    ],
  });

  it('still reads a JSON-lines export whose first line is damaged, and rejects that line', async () => {
    const { rejects, events, summary } = await ingestFiles({ 'spans.jsonl': `{"resourceSp\n${exportLine}\n` });
    expect(summary.skipped).toEqual([]);
    expect(rejects.map((reject) => reject.position)).toEqual(['line 1']);
    expect(events.map((event) => event.id)).toEqual(['otel:t1#start', 'otel:t1#end']);
  });

  it('rejects a span whose attribute value is nested thousands of levels deep instead of crashing', async () => {
    let value: unknown = { stringValue: 'x' };
    for (let level = 0; level < 500; level++) value = { arrayValue: { values: [value] } };
    const document = JSON.parse(exportLine);
    document.resourceSpans[0].scopeSpans[0].spans.push({
      traceId: 't1',
      spanId: 's2',
      parentSpanId: 's1',
      name: 'deep',
      startTimeUnixNano: '1700000000000000001',
      attributes: [{ key: 'k', value: '__deep__' }],
    });
    const text = JSON.stringify(document).replace('"__deep__"', () => JSON.stringify(value));
    expect(text.length).toBeGreaterThan(10_000);
    const items = parseOtlpTraces(JSON.parse(text), 'deep.json');
    const rejected = items
      .filter((item) => item.kind === 'reject')
      .map((item) => item.kind === 'reject' && item.reject);
    expect(rejected).toEqual([
      expect.objectContaining({
        position: 'resourceSpans[0].scopeSpans[0].spans[1]',
        reason: 'malformed span: an attribute value is nested deeper than 64 levels',
      }),
    ]);
    expect(items.filter((item) => item.kind === 'event')).toHaveLength(2);
  });

  it('rejects a span whose kind names none (an unknown OpenInference kind, an operation name that is no name)', async () => {
    const document = JSON.parse(exportLine);
    const span = (spanId: string, key: string, value: string) => ({
      traceId: 't1',
      spanId,
      parentSpanId: 's1',
      name: 'call',
      startTimeUnixNano: '1700000000000000001',
      attributes: [{ key, value: { stringValue: value } }],
    });
    document.resourceSpans[0].scopeSpans[0].spans.push(
      span('s2', 'openinference.span.kind', 'x'.repeat(1000)),
      span('s3', 'gen_ai.operation.name', 'chat completion, please'),
      // A kind OpenInference defines but no agent step, and a system's own operation name: passed over, not rejected.
      span('s4', 'openinference.span.kind', 'retriever'),
      span('s5', 'gen_ai.operation.name', 'my_system.plan'),
    );
    const items = parseOtlpTraces(document, 'kinds.json');
    const rejected = items.flatMap((item) => (item.kind === 'reject' ? [item.reject] : []));
    expect(rejected.map((reject) => [reject.position, reject.reason])).toEqual([
      [
        'resourceSpans[0].scopeSpans[0].spans[1]',
        'malformed span: openinference.span.kind is not a kind OpenInference defines ("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…", 1000 characters)',
      ],
      [
        'resourceSpans[0].scopeSpans[0].spans[2]',
        'malformed span: gen_ai.operation.name is not an operation name ("chat completion, please")',
      ],
    ]);
    expect(items.filter((item) => item.kind === 'event')).toHaveLength(2);
  });
});
