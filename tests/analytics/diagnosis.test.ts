import OpenAI from 'openai';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { diagnoseRuns, diagnosisEventId, loadRunDigest } from '../../analytics/diagnosis.js';
import {
  buildDiagnosisPrompt,
  DIAGNOSIS_PROMPT_VERSION,
  DiagnosisReply,
  KNOWN_MECHANISMS,
  type RunDigest,
} from '../../analytics/diagnosis-prompt.js';
import { type LlmConfig, OpenAiLlm, readLlmConfig } from '../../analytics/llm.js';
import { EventLog, type TraceEvent, UserError } from '../../core/index.js';
import { sampleRun } from '../support/events.js';
import {
  chatReply,
  errorReply,
  malformedReply,
  type OpenAiTestServer,
  startOpenAiServer,
  toolCallReply,
} from '../support/openai-server.js';

const goodReply = {
  terminal_cause: 'output.txt was never written, so test_output failed',
  criticality: 'root-cause',
  agent_mechanism: 'Missing Required Artifact',
  evidence_step_ids: [2, 1, 2],
  reasoning: 'make failed at step 1; step 2 built something else and the agent stopped without writing output.txt.',
};

function llmFor(server: OpenAiTestServer, overrides: Partial<LlmConfig> = {}): OpenAiLlm {
  return new OpenAiLlm(
    readLlmConfig(
      { SELFHARNESS_LLM_BASE_URL: server.baseUrl, SELFHARNESS_LLM_MODEL: 'judge-1' },
      { initialBackoffMs: 1, maxBackoffMs: 5, timeoutMs: 2_000, ...overrides },
    ),
  );
}

async function diagnosisEvents(log: EventLog) {
  return log.query<{ run_id: string; id: string; source_format: string; data: string }>(
    "SELECT run_id, id, source_format, CAST(data AS VARCHAR) AS data FROM events WHERE type = 'diagnosis-create' ORDER BY run_id, id",
  );
}

describe('diagnoseRuns against a scripted OpenAI-compatible server', () => {
  let log: EventLog;
  let server: OpenAiTestServer;

  beforeEach(async () => {
    log = await EventLog.open(':memory:');
    await log.appendEvents([
      ...sampleRun('run-failed-1'),
      ...sampleRun('run-failed-2'),
      ...sampleRun('run-passed', 'passed'),
      ...sampleRun('run-invalid', 'invalid'),
    ]);
  });

  afterEach(async () => {
    log.close();
    await server?.close();
  });

  it('diagnoses each failed valid run once, stores the diagnosis as an event, and never asks again', async () => {
    server = await startOpenAiServer({ chat: () => chatReply(goodReply) });
    const first = await diagnoseRuns(log, llmFor(server));
    expect(first).toMatchObject({ failedRuns: 2, cached: 0, diagnosed: 2, rejected: 0, failedRequests: 0 });
    expect(server.chatRequests()).toHaveLength(2);

    const events = await diagnosisEvents(log);
    expect(events.map((event) => [event.run_id, event.id, event.source_format])).toEqual([
      ['run-failed-1', diagnosisEventId(DIAGNOSIS_PROMPT_VERSION, 'judge-1'), 'diagnosis'],
      ['run-failed-2', diagnosisEventId(DIAGNOSIS_PROMPT_VERSION, 'judge-1'), 'diagnosis'],
    ]);
    expect(JSON.parse(events[0]?.data ?? '{}')).toEqual({
      promptVersion: DIAGNOSIS_PROMPT_VERSION,
      model: 'judge-1',
      terminalCause: goodReply.terminal_cause,
      criticality: 'root-cause',
      mechanism: 'missing-required-artifact',
      evidenceSteps: [1, 2],
      reasoning: goodReply.reasoning,
    });

    // The prompt carries the run: its task, the failing command and its output, and the verifier's message.
    const prompt =
      server
        .chatRequests()[0]
        ?.messages.map((message) => String(message.content))
        .join('\n') ?? '';
    expect(prompt).toContain('Task: make-output');
    expect(prompt).toContain('call shell: make');
    expect(prompt).toContain('exit 2');
    expect(prompt).toContain('No targets');
    expect(prompt).toContain('test_output: failed (output.txt missing)');
    expect(server.chatRequests()[0]?.response_format).toEqual({ type: 'json_object' });

    // Analysts read them from the `diagnoses` view.
    expect(
      await log.query('SELECT run_id, model, criticality, mechanism, evidence_steps FROM diagnoses ORDER BY run_id'),
    ).toEqual([
      {
        run_id: 'run-failed-1',
        model: 'judge-1',
        criticality: 'root-cause',
        mechanism: 'missing-required-artifact',
        evidence_steps: [1, 2],
      },
      {
        run_id: 'run-failed-2',
        model: 'judge-1',
        criticality: 'root-cause',
        mechanism: 'missing-required-artifact',
        evidence_steps: [1, 2],
      },
    ]);

    const second = await diagnoseRuns(log, llmFor(server));
    expect(second).toMatchObject({ failedRuns: 2, cached: 2, diagnosed: 0 });
    expect(server.chatRequests()).toHaveLength(2);

    // Another diagnosing model is another cache key.
    const other = await diagnoseRuns(log, llmFor(server, { model: 'judge-2' }));
    expect(other).toMatchObject({ cached: 0, diagnosed: 2 });
    expect(server.chatRequests()).toHaveLength(4);
    expect(server.chatRequests()[3]?.model).toBe('judge-2');
    // The projections still describe the runs as before.
    const [runs] = await log.query<{ n: bigint; failed: bigint }>(
      "SELECT count(*) AS n, count(*) FILTER (WHERE outcome = 'failed') AS failed FROM runs",
    );
    expect(runs).toEqual({ n: 4n, failed: 2n });
  });

  it('filters by agent model and split, and --limit leaves the rest for later', async () => {
    await log.appendEvents(
      sampleRun('run-other-model').map((event) =>
        event.type === 'run-start' ? { ...event, data: { ...event.data, model: 'model-b', split: 'held-out' } } : event,
      ),
    );
    server = await startOpenAiServer({ chat: () => chatReply(goodReply) });
    const onlyB = await diagnoseRuns(log, llmFor(server), { model: 'model-b' });
    expect(onlyB).toMatchObject({ failedRuns: 1, diagnosed: 1 });
    expect(onlyB.diagnoses.map((diagnosis) => diagnosis.runId)).toEqual(['run-other-model']);
    const heldIn = await diagnoseRuns(log, llmFor(server), { split: 'held-in' });
    expect(heldIn).toMatchObject({ failedRuns: 0, diagnosed: 0 });
    const limited = await diagnoseRuns(log, llmFor(server), { limit: 1 });
    expect(limited).toMatchObject({ failedRuns: 3, cached: 1, diagnosed: 1, deferred: 1 });
    expect(server.chatRequests()).toHaveLength(2);
  });

  it('rejects malformed and out-of-range replies with a reason, keeps them, and retries those runs later', async () => {
    server = await startOpenAiServer({
      replies: [
        chatReply('The run failed because make had no targets.'),
        chatReply({ ...goodReply, evidence_step_ids: [1, 57] }),
      ],
    });
    const first = await diagnoseRuns(log, llmFor(server), { concurrency: 1 });
    expect(first).toMatchObject({ diagnosed: 0, rejected: 2 });
    expect(first.rejections).toEqual([
      { runId: 'run-failed-1', reason: 'the reply holds no JSON object' },
      { runId: 'run-failed-2', reason: 'evidence step 57 is not in run run-failed-2 (its steps are 1–2)' },
    ]);
    const rejects = await log.query<{ format: string; file: string; reason: string; raw: string }>(
      'SELECT format, file, reason, raw FROM ingest_rejects ORDER BY file',
    );
    expect(rejects.map((reject) => [reject.format, reject.file])).toEqual([
      ['diagnosis', 'run-failed-1'],
      ['diagnosis', 'run-failed-2'],
    ]);
    expect(rejects[0]?.raw).toBe('The run failed because make had no targets.');
    expect(rejects[1]?.reason).toMatch(
      /^Diagnosis of run run-failed-2 by judge-1 rejected: evidence step 57 is not in run/,
    );
    expect(await diagnosisEvents(log)).toEqual([]);

    server.enqueue(
      chatReply({ ...goodReply, criticality: 'catastrophic' }),
      chatReply(`Here it is:\n\`\`\`json\n${JSON.stringify(goodReply)}\n\`\`\``),
    );
    const second = await diagnoseRuns(log, llmFor(server), { concurrency: 1 });
    expect(second).toMatchObject({ diagnosed: 1, rejected: 1 });
    expect(second.rejections[0]?.reason).toMatch(/^the reply does not have the expected shape: criticality: /);
    expect((await diagnosisEvents(log)).map((event) => event.run_id)).toEqual(['run-failed-2']);
    expect(server.chatRequests()).toHaveLength(4);
  });

  it('retries rate limits and server errors with backoff, and counts requests that still fail', async () => {
    server = await startOpenAiServer({
      replies: [errorReply(429, 'slow down', { 'retry-after-ms': '5' }), errorReply(500), chatReply(goodReply)],
      chat: () => errorReply(503, 'overloaded'),
    });
    const summary = await diagnoseRuns(log, llmFor(server, { maxRetries: 2 }), { concurrency: 1 });
    expect(summary).toMatchObject({ diagnosed: 1, failedRequests: 1 });
    expect(summary.failures).toEqual([
      { runId: 'run-failed-2', reason: expect.stringMatching(/answered 503 after 3 attempts: 503 overloaded/) },
    ]);
    // 3 attempts for the first run (429, 500, success) and 3 for the second (503 each time).
    expect(server.chatRequests()).toHaveLength(6);
  });

  it('gives up on a request that outlives its timeout, after its retries', async () => {
    server = await startOpenAiServer({ chat: () => ({ ...chatReply(goodReply), delayMs: 400 }) });
    const summary = await diagnoseRuns(log, llmFor(server, { timeoutMs: 100, maxRetries: 1 }), { limit: 1 });
    expect(summary).toMatchObject({ diagnosed: 0, failedRequests: 1 });
    expect(summary.failures[0]?.reason).toMatch(/did not answer within 100 ms/);
    expect(server.chatRequests()).toHaveLength(2);
  });

  it('retries an unreadable HTTP body, then counts it as a failed request', async () => {
    server = await startOpenAiServer({ chat: () => malformedReply() });
    const summary = await diagnoseRuns(log, llmFor(server, { maxRetries: 1 }), { limit: 1 });
    expect(summary).toMatchObject({ diagnosed: 0, failedRequests: 1 });
    expect(summary.failures[0]?.reason).toMatch(/unreadable reply \(2 attempts\)/);
    expect(server.chatRequests()).toHaveLength(2);
  });

  it('stops with an actionable error when the endpoint refuses the key', async () => {
    server = await startOpenAiServer({ chat: () => errorReply(401, 'invalid api key') });
    const error = await diagnoseRuns(log, llmFor(server), { concurrency: 1 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(/refused the request \(401\).*Check SELFHARNESS_LLM_API_KEY/);
    expect(server.chatRequests()).toHaveLength(1);
  });

  it('keeps no more requests in flight than the concurrency limit', async () => {
    const runs: TraceEvent[] = [];
    for (let index = 0; index < 6; index++) runs.push(...sampleRun(`run-many-${index}`));
    await log.appendEvents(runs);
    let inFlight = 0;
    let mostInFlight = 0;
    server = await startOpenAiServer({
      chat: async () => {
        inFlight += 1;
        mostInFlight = Math.max(mostInFlight, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 400));
        inFlight -= 1;
        return chatReply(goodReply);
      },
    });
    // Eight runs are worked on at once, but the model gets at most three requests at a time.
    const summary = await diagnoseRuns(log, llmFor(server, { concurrency: 3 }), { concurrency: 8 });
    expect(summary.diagnosed).toBe(8);
    expect(mostInFlight).toBe(3);
  });
});

describe('the diagnosis prompt', () => {
  it('stays within its bound on a long run, keeping the end of the run and the steps detectors point at', async () => {
    const log = await EventLog.open(':memory:');
    try {
      const events: TraceEvent[] = [
        {
          id: 'start',
          runId: 'long',
          type: 'run-start',
          data: { task: 'long-task', instruction: 'Write /app/out.txt.' },
        },
      ];
      for (let step = 0; step < 400; step++) {
        events.push(
          {
            id: `s${step}`,
            runId: 'long',
            type: 'step-create',
            data: { step, role: 'agent', message: `thinking ${step} ${'x'.repeat(900)}` },
          },
          {
            id: `c${step}`,
            runId: 'long',
            type: 'tool-call',
            data: { step, callId: `c${step}`, tool: 'shell', arguments: {}, command: `cat file${step}` },
          },
          {
            id: `r${step}`,
            runId: 'long',
            type: 'tool-result',
            data: { step, callId: `c${step}`, output: 'y'.repeat(3000), exitCode: step === 123 ? 1 : 0 },
          },
        );
      }
      events.push({
        id: 'end',
        runId: 'long',
        type: 'run-end',
        data: { outcome: 'failed', failureReason: 'agent_timeout' },
      });
      await log.appendEvents(events);
      const digest: RunDigest = await loadRunDigest(log, 'long', [
        {
          mechanism: 'exploration-without-implementation',
          firstStep: 200,
          evidenceSteps: [200, 201],
          excerpt: 'cat file200',
        },
      ]);
      expect(digest.steps).toHaveLength(400);
      expect(digest.instruction).toBe('Write /app/out.txt.');
      const prompt = buildDiagnosisPrompt(digest);
      expect(prompt.user.length).toBeLessThanOrEqual(24_000);
      expect(prompt.shownSteps).toEqual(expect.arrayContaining([0, 123, 200, 201, 399]));
      expect(prompt.shownSteps.length).toBeLessThan(400);
      expect(prompt.user).toContain('Outcome: failed; recorded reason: agent_timeout');
      expect(prompt.user).toMatch(/\[… \d+ steps left out …\]/);
      expect(prompt.user).toContain('- exploration-without-implementation at steps 200, 201: cat file200');
    } finally {
      log.close();
    }
  });
});

describe('structured output modes', () => {
  it('sends the reply schema in json_schema mode', async () => {
    const server = await startOpenAiServer({ chat: () => chatReply(goodReply) });
    try {
      const llm = new OpenAiLlm(
        readLlmConfig({
          SELFHARNESS_LLM_BASE_URL: server.baseUrl,
          SELFHARNESS_LLM_MODEL: 'judge-1',
          SELFHARNESS_LLM_JSON_MODE: 'json_schema',
        }),
      );
      const result = await llm.completeJson({ system: 's', user: 'u', schemaName: 'diagnosis' }, DiagnosisReply);
      expect(result).toMatchObject({ ok: true, attempts: 1, value: { criticality: 'root-cause' } });
      const format = server.chatRequests()[0]?.response_format as {
        type: string;
        json_schema: { name: string; schema: { properties: Record<string, unknown>; required: string[] } };
      };
      expect(format.type).toBe('json_schema');
      expect(format.json_schema.name).toBe('diagnosis');
      expect(format.json_schema.schema.required).toEqual(
        expect.arrayContaining(['terminal_cause', 'criticality', 'agent_mechanism', 'evidence_step_ids', 'reasoning']),
      );
    } finally {
      await server.close();
    }
  });
});

describe('the scripted server as the OpenAI SDK sees it', () => {
  it('answers tool calls and embeddings in the API’s shapes', async () => {
    const server = await startOpenAiServer({
      replies: [toolCallReply([{ name: 'shell', arguments: { command: 'ls' } }])],
      dimensions: 4,
    });
    try {
      const client = new OpenAI({ baseURL: server.baseUrl, apiKey: 'k', maxRetries: 0 });
      const completion = await client.chat.completions.create({
        model: 'm',
        messages: [{ role: 'user', content: 'list files' }],
        tools: [{ type: 'function', function: { name: 'shell', parameters: { type: 'object' } } }],
      });
      const call = completion.choices[0]?.message.tool_calls?.[0];
      expect(completion.choices[0]?.finish_reason).toBe('tool_calls');
      expect(call?.type === 'function' ? [call.function.name, JSON.parse(call.function.arguments)] : []).toEqual([
        'shell',
        { command: 'ls' },
      ]);
      const embeddings = await client.embeddings.create({ model: 'e', input: ['a', 'b', 'a'] });
      expect(embeddings.data.map((entry) => entry.embedding.length)).toEqual([4, 4, 4]);
      expect(embeddings.data[0]?.embedding).toEqual(embeddings.data[2]?.embedding);
      expect(embeddings.data[0]?.embedding).not.toEqual(embeddings.data[1]?.embedding);
      expect(server.requests.map((request) => request.path)).toEqual(['/v1/chat/completions', '/v1/embeddings']);
    } finally {
      await server.close();
    }
  });
});

describe('the mechanism names in the prompt', () => {
  it("are the detectors' mechanism ids", async () => {
    await import('../../analytics/schema.js');
    const { mechanisms } = await import('../../analytics/detectors.js');
    expect([...KNOWN_MECHANISMS].sort()).toEqual([...mechanisms].sort());
  });
});

describe('readLlmConfig', () => {
  it('says what to set when no endpoint is configured, and checks numbers', () => {
    expect(() => readLlmConfig({})).toThrow(/set SELFHARNESS_LLM_BASE_URL to an OpenAI-compatible API/);
    expect(() => readLlmConfig({ SELFHARNESS_LLM_BASE_URL: 'http://localhost:8000/v1' })).toThrow(
      /set SELFHARNESS_LLM_MODEL/,
    );
    expect(() =>
      readLlmConfig({
        SELFHARNESS_LLM_BASE_URL: 'http://x/v1',
        SELFHARNESS_LLM_MODEL: 'm',
        SELFHARNESS_LLM_TIMEOUT_MS: 'soon',
      }),
    ).toThrow('SELFHARNESS_LLM_TIMEOUT_MS must be a whole number of at least 1, not "soon".');
    expect(readLlmConfig({ SELFHARNESS_LLM_BASE_URL: 'http://x/v1', SELFHARNESS_LLM_MODEL: 'm' })).toMatchObject({
      baseUrl: 'http://x/v1',
      model: 'm',
      apiKey: undefined,
      jsonMode: 'json_object',
    });
  });
});
