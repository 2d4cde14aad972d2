import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findBubblewrap } from '../../tasks/index.js';
import {
  type ChatRequest,
  type OpenAiTestServer,
  type ScriptedReply,
  startOpenAiServer,
  toolCallReply,
} from '../support/openai-server.js';
import { type RunJson, runTrialsCli, scratchFolder, sql } from './support-harness.js';

/**
 * `selfharness run --model openai:MODEL` against a local OpenAI-compatible server whose replies are scripted (the
 * declared test double for a model): its tool calls run in the trial's bubblewrap sandbox, and every step, call,
 * output and the run's end land in the log.
 */

const hasBubblewrap = findBubblewrap() !== undefined;

/** The text of a chat message's content, whatever its shape. */
function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((part) => (part as { text?: string }).text ?? '').join('');
  return '';
}

/**
 * The scripted model. For `make-hello-subdir` it looks around, builds and runs the program with one shell call, reads
 * the result back and finishes; for any other task it finishes at once, leaving the workspace as the setup left it.
 */
function scriptedModel(request: ChatRequest, hostFolder: string): ScriptedReply {
  const instruction = textOf(request.messages.find((message) => message.role === 'user')?.content);
  const turn = request.messages.filter((message) => message.role === 'assistant').length;
  if (!instruction.includes('project/hello')) {
    return toolCallReply([{ name: 'finish', arguments: { summary: 'Nothing to do.' } }], { model: 'test-model' });
  }
  const script: ScriptedReply[] = [
    toolCallReply(
      [
        {
          name: 'shell',
          arguments: {
            command: `pwd && ls && tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' && (test -e ${hostFolder} && echo host-visible || echo host-hidden)`,
          },
        },
      ],
      { content: 'Looking around first.', model: 'test-model' },
    ),
    toolCallReply(
      [
        {
          name: 'shell',
          arguments: { command: 'cd project && make && mkdir -p ../out && ./hello > ../out/hello.txt' },
        },
      ],
      { model: 'test-model' },
    ),
    toolCallReply([{ name: 'read_file', arguments: { path: 'out/hello.txt' } }], { model: 'test-model' }),
    toolCallReply([{ name: 'finish', arguments: { summary: 'Built project/hello and saved its output.' } }], {
      model: 'test-model',
    }),
  ];
  return script[turn] ?? toolCallReply([{ name: 'finish', arguments: { summary: 'Done.' } }]);
}

describe.skipIf(!hasBubblewrap)('selfharness run --model openai:MODEL against a local OpenAI-compatible server', () => {
  const scratch = scratchFolder('e2e-openai');
  const database = join(scratch.path, 'openai.duckdb');
  let server: OpenAiTestServer;
  let output: RunJson;

  beforeAll(async () => {
    server = await startOpenAiServer({
      modelId: 'test-model',
      chat: (request) => scriptedModel(request, scratch.path),
    });
    output = await runTrialsCli(
      database,
      ['--tasks', 'make-hello-subdir', 'count-words', '--model', 'openai:test-model'],
      { SELFHARNESS_LLM_BASE_URL: server.baseUrl, SELFHARNESS_LLM_MAX_RETRIES: '0' },
    );
  });
  afterAll(async () => {
    await server?.close();
    scratch.remove();
  });

  it('executes the tool calls it returns in the sandbox, and the verifier passes the task they solve', async () => {
    const byTask = new Map(output.results.map((trial) => [trial.task, trial]));
    expect(output.model).toBe('openai:test-model');
    expect(output.harnessVersion).toMatch(/^[0-9a-f]{12}$/);
    expect(byTask.get('make-hello-subdir')).toMatchObject({ outcome: 'passed' });

    const calls = await sql<{ tool: string; command: string | null; exit_code: number | null; output: string }>(
      database,
      `SELECT c.tool, c.command, c.exit_code, json_extract_string(e.data, '$.output') AS output
       FROM tool_calls c JOIN runs r USING (run_id)
       JOIN events e ON e.type = 'tool-result' AND e.run_id = c.run_id AND json_extract_string(e.data, '$.callId') = c.call_id
       WHERE r.task = 'make-hello-subdir' ORDER BY c.step`,
    );
    expect(calls.map((call) => [call.tool, call.exit_code])).toEqual([
      ['shell', 0],
      ['shell', 0],
      ['read_file', null],
      ['finish', null],
    ]);
    // Inside the sandbox: the workspace is /workspace, only the loopback interface exists, the host's folders are not there.
    const [look, build, read] = calls;
    expect(look?.output).toMatch(/^\/workspace\nproject\nlo\nhost-hidden\n/);
    expect(build?.command).toBe('cd project && make && mkdir -p ../out && ./hello > ../out/hello.txt');
    expect(build?.output).toContain('gcc -Wall -O2 -o hello hello.o');
    expect(read?.output?.trim()).toBe('Hello from make, version 3');

    // What the sandbox printed went back to the model as the results of its calls.
    const requests = server
      .chatRequests()
      .filter((request) => textOf(request.messages[1]?.content).includes('project/hello'));
    expect(requests).toHaveLength(4);
    expect(requests.every((request) => request.model === 'test-model')).toBe(true);
    const toolMessages = requests[3]?.messages.filter((message) => message.role === 'tool') ?? [];
    expect(toolMessages.map((message) => message.tool_call_id)).toEqual(['call_1', 'call_1', 'call_1']);
    expect(textOf(toolMessages[0]?.content)).toContain('/workspace');
    expect(textOf(toolMessages[2]?.content).trim()).toBe('Hello from make, version 3');
  });

  it('logs every step, call, output, the verifier and the run end, in order', async () => {
    const events = await sql<{ task: string; type: string; role: string | null; step: number | null }>(
      database,
      `SELECT r.task, e.type, json_extract_string(e.data, '$.role') AS role,
              CAST(json_extract_string(e.data, '$.step') AS INTEGER) AS step
       FROM events e JOIN runs r USING (run_id) ORDER BY r.task, e.seq`,
    );
    const hello = events.filter((event) => event.task === 'make-hello-subdir');
    expect(hello.map((event) => (event.role ? `${event.type}:${event.role}` : event.type))).toEqual([
      'run-start',
      'step-create:system',
      'step-create:user',
      'step-create:agent',
      'tool-call',
      'tool-result',
      'step-create:agent',
      'tool-call',
      'tool-result',
      'step-create:agent',
      'tool-call',
      'tool-result',
      'step-create:agent',
      'tool-call',
      'tool-result',
      'run-verify',
      'run-end',
    ]);
    const runs = await sql<{
      task: string;
      model: string;
      harness_version: string;
      outcome: string;
      step_count: number;
      tool_call_count: number;
      prompt_tokens: number;
      completion_tokens: number;
    }>(
      database,
      'SELECT task, model, harness_version, outcome, step_count, tool_call_count, prompt_tokens, completion_tokens FROM runs ORDER BY task',
    );
    expect(runs).toEqual([
      {
        task: 'count-words',
        model: 'openai:test-model',
        harness_version: output.harnessVersion,
        outcome: 'failed',
        step_count: 3,
        tool_call_count: 1,
        prompt_tokens: 10,
        completion_tokens: 5,
      },
      {
        task: 'make-hello-subdir',
        model: 'openai:test-model',
        harness_version: output.harnessVersion,
        outcome: 'passed',
        step_count: 6,
        tool_call_count: 4,
        prompt_tokens: 40,
        completion_tokens: 20,
      },
    ]);
    const steps = await sql<{ step: number; role: string; message: string; model: string | null }>(
      database,
      `SELECT s.step, s.role, s.message, s.model FROM steps s JOIN runs r USING (run_id)
       WHERE r.task = 'make-hello-subdir' AND s.role = 'agent' ORDER BY s.step`,
    );
    expect(steps[0]).toMatchObject({ message: 'Looking around first.', model: 'openai:test-model' });
    expect(steps).toHaveLength(4);
  });

  it('fails a task whose workspace the model left untouched, naming the missing required file', async () => {
    const trial = output.results.find((result) => result.task === 'count-words');
    expect(trial).toMatchObject({ outcome: 'failed', failureReason: 'tests_failed' });
    const tests = await sql<{ test_name: string; status: string; message: string | null }>(
      database,
      `SELECT v.test_name, v.status, v.message FROM verifications v JOIN runs r USING (run_id)
       WHERE r.task = 'count-words' AND v.test_name LIKE 'required file%'`,
    );
    expect(tests).toEqual([
      {
        test_name: 'required file out/top-words.txt',
        status: 'failed',
        message: 'missing required file out/top-words.txt',
      },
    ]);
    expect(output.summary.overall).toMatchObject({ trials: 2, passed: 1, failed: 1, invalid: 0, passRate: 0.5 });
  });
});
