import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EventLog } from '../../core/index.js';
import { computeVersionId, createAgent, defaultHarnessSpec, type TrialOutcome } from '../../harness/index.js';
import { createLocalWorkspace } from '../support/local-workspace.js';
import {
  chatReply,
  errorReply,
  type OpenAiTestServer,
  type ScriptedReply,
  startOpenAiServer,
  toolCallReply,
} from '../support/openai-server.js';
import { taskFor } from './trial.js';

let server: OpenAiTestServer | undefined;
let log: EventLog | undefined;

afterEach(async () => {
  await server?.close();
  log?.close();
  server = undefined;
  log = undefined;
});

async function runAgainstServer(replies: ScriptedReply[], instruction = 'Write hello to `greeting.txt`.') {
  server = await startOpenAiServer({ replies });
  log = await EventLog.open(join(mkdtempSync(join(tmpdir(), 'selfharness-openai-')), 'log.duckdb'));
  const agent = await createAgent({
    model: 'openai:scripted-model',
    log,
    environment: { SELFHARNESS_LLM_BASE_URL: server.baseUrl, SELFHARNESS_LLM_MAX_RETRIES: '2' },
  });
  const workspace = createLocalWorkspace();
  const openLog = log;
  const outcome: TrialOutcome = await agent.solve({
    runId: 'openai-run',
    task: taskFor(instruction),
    workspace,
    seed: 0,
    signal: new AbortController().signal,
    emit: async (events) => {
      await openLog.appendEvents(events);
    },
  });
  return { agent, outcome, workspace, log: openLog, server };
}

describe('openai:MODEL against an OpenAI-compatible server', () => {
  it('executes the tool calls the server returns and logs every step in the log', async () => {
    const {
      agent,
      outcome,
      workspace,
      log: events,
      server: endpoint,
    } = await runAgainstServer([
      toolCallReply([{ name: 'shell', arguments: { command: 'echo hello > greeting.txt' } }], { content: 'Writing.' }),
      errorReply(500, 'temporary failure', { 'retry-after-ms': '10' }),
      toolCallReply([
        { name: 'read_file', arguments: { path: 'greeting.txt' } },
        { name: 'shell', arguments: '{"command": "ls' },
      ]),
      toolCallReply([{ name: 'finish', arguments: { summary: 'greeting written' } }]),
    ]);
    expect(agent.model).toBe('openai:scripted-model');
    expect(agent.harnessVersion).toBe(computeVersionId(defaultHarnessSpec));
    expect(outcome).toMatchObject({ finished: true, promptTokens: 30, completionTokens: 15 });
    expect(readFileSync(join(workspace.hostPath, 'greeting.txt'), 'utf8')).toBe('hello\n');

    const steps = await events.query<{ step: number; role: string; message: string; prompt_tokens: bigint | null }>(
      "SELECT step, role, message, prompt_tokens FROM steps WHERE run_id = 'openai-run' ORDER BY step",
    );
    expect(steps.map((step) => step.role)).toEqual(['system', 'user', 'agent', 'agent', 'agent']);
    expect(steps[2]).toMatchObject({ message: 'Writing.', prompt_tokens: 10n });
    const calls = await events.query<{
      tool: string;
      command: string | null;
      exit_code: number | null;
      error: string | null;
    }>("SELECT tool, command, exit_code, error FROM tool_calls WHERE run_id = 'openai-run' ORDER BY step, call_id");
    expect(calls).toEqual([
      { tool: 'shell', command: 'echo hello > greeting.txt', exit_code: 0, error: null },
      { tool: 'read_file', command: null, exit_code: null, error: null },
      { tool: 'shell', command: null, exit_code: null, error: expect.stringMatching(/not a valid JSON object/) },
      { tool: 'finish', command: null, exit_code: null, error: null },
    ]);

    // The 500 was retried; the tool results went back with the ids of the calls they answer.
    const requests = endpoint.chatRequests();
    expect(requests).toHaveLength(4);
    expect(requests[0]?.tools?.map((tool) => (tool as { function: { name: string } }).function.name)).toEqual([
      'shell',
      'read_file',
      'write_file',
      'edit_file',
      'list_directory',
      'finish',
    ]);
    const lastMessages = requests[3]?.messages ?? [];
    expect(lastMessages.slice(-3).map((message) => [message.role, message.tool_call_id])).toEqual([
      ['assistant', undefined],
      ['tool', 'call_1'],
      ['tool', 'call_2'],
    ]);
    expect(lastMessages.at(-2)?.content).toBe('hello');
  });

  it('runs tool calls a model writes as JSON in its text', async () => {
    const { outcome, log: events } = await runAgainstServer([
      chatReply(
        'I will write the file.\n```json\n{"name": "write_file", "arguments": {"path": "greeting.txt", "content": "hello"}}\n```',
      ),
      chatReply('<tool_call>{"name": "finish", "arguments": {"summary": "done"}}</tool_call>'),
    ]);
    expect(outcome.finished).toBe(true);
    const calls = await events.query<{ tool: string }>(
      "SELECT tool FROM tool_calls WHERE run_id = 'openai-run' ORDER BY step",
    );
    expect(calls.map((call) => call.tool)).toEqual(['write_file', 'finish']);
  });

  it('stops with model_error when the endpoint keeps failing, with the reason in the log', async () => {
    const failure = errorReply(503, 'overloaded', { 'retry-after-ms': '10' });
    const { outcome, log: events } = await runAgainstServer([failure, failure, failure]);
    expect(outcome).toMatchObject({ finished: false, stopReason: 'model_error' });
    const last = await events.query<{ message: string }>(
      "SELECT message FROM steps WHERE run_id = 'openai-run' ORDER BY step DESC LIMIT 1",
    );
    expect(last[0]?.message).toMatch(/^The model call failed: 503 overloaded/);
  });
});

describe('createAgent', () => {
  it('names the valid model forms for an unknown model, profile or missing endpoint', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'selfharness-agent-'));
    log = await EventLog.open(join(folder, 'log.duckdb'));
    await expect(createAgent({ model: 'gpt-4', log })).rejects.toThrow(
      /Unknown model "gpt-4": use openai:MODEL .* or sim:PROFILE \(/,
    );
    await expect(createAgent({ model: 'sim:no-such-profile', log })).rejects.toThrow(
      /Unknown simulated model profile no-such-profile in sim:no-such-profile: the profiles are /,
    );
    await expect(createAgent({ model: 'openai:gpt-4.1-mini', log, environment: {} })).rejects.toThrow(
      /needs an endpoint: set SELFHARNESS_LLM_BASE_URL/,
    );
    await expect(
      createAgent({ model: 'openai:x', log, harness: 'abc123', environment: { SELFHARNESS_LLM_API_KEY: 'k' } }),
    ).rejects.toThrow(/Unknown harness version abc123/);
  });
});
