import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultHarnessSpec, parseTextToolCalls } from '../../harness/index.js';
import { call, finish, ScriptedModel, shell } from '../support/scripted-model.js';
import { lastToolMessage, runTrial, specWith, toolResults } from './trial.js';

const budgets = (changes: Partial<typeof defaultHarnessSpec.budgets>) =>
  specWith({
    budgets: { ...defaultHarnessSpec.budgets, ...changes },
  });

describe('the agent runtime', () => {
  it('executes tool calls in the workspace and logs every step as events, in order, with deterministic ids', async () => {
    const script = () => [
      {
        ...shell('echo hello > a.txt && cat a.txt'),
        reasoning: 'start simple',
        promptTokens: 120,
        completionTokens: 7,
      },
      call('write_file', { path: 'out/b.txt', content: 'bee\n' }),
      call('read_file', { path: 'out/b.txt' }),
      call('list_directory', {}),
      finish('wrote a.txt and out/b.txt'),
    ];
    const model = new ScriptedModel(script());
    const run = await runTrial({ model });
    expect(run.outcome).toMatchObject({ finished: true, promptTokens: 520, completionTokens: 47 });
    expect(run.outcome.stopReason).toBeUndefined();
    expect(readFileSync(join(run.workspace.hostPath, 'out/b.txt'), 'utf8')).toBe('bee\n');

    expect(run.events.map((event) => `${event.type}:${event.id}`).slice(0, 7)).toEqual([
      'step-create:trial-1:step-1',
      'step-create:trial-1:step-2',
      'step-create:trial-1:step-3',
      'tool-call:trial-1:call-3-1',
      'tool-result:trial-1:result-3-1',
      'step-create:trial-1:step-4',
      'tool-call:trial-1:call-4-1',
    ]);
    const steps = run.events.flatMap((event) => (event.type === 'step-create' ? [event.data] : []));
    expect(steps.map((step) => step.role)).toEqual(['system', 'user', 'agent', 'agent', 'agent', 'agent', 'agent']);
    expect(steps[1]?.message).toBe('Do the task.');
    expect(steps[2]).toMatchObject({
      model: 'scripted',
      reasoning: 'start simple',
      promptTokens: 120,
      completionTokens: 7,
    });
    const firstCall = run.events.find((event) => event.type === 'tool-call');
    expect(firstCall?.data).toMatchObject({
      step: 3,
      callId: '3-1',
      tool: 'shell',
      command: 'echo hello > a.txt && cat a.txt',
    });
    const results = toolResults(run.events);
    expect(results[0]).toMatchObject({ step: 3, callId: '3-1', exitCode: 0 });
    expect(results[0]?.output).toContain('hello');
    expect(results[2]?.output).toContain('bee');
    expect(results[3]?.output).toMatch(/a\.txt\nout\//);
    expect(results[4]?.output).toBe('Finished.');
    // The model read the result of its command.
    expect(model.requests[1]?.messages.at(-1)).toMatchObject({ role: 'tool', content: 'hello\n[exit code 0]' });
    // The same replies give the same events.
    const again = await runTrial({ model: new ScriptedModel(script()) });
    expect(again.events.map((event) => event.id)).toEqual(run.events.map((event) => event.id));
  });

  it('runs each shell call in a fresh process by default: exported variables do not carry over', async () => {
    const model = new ScriptedModel([shell('export X=1; cd out'), shell('echo "X=$X"; pwd'), finish()]);
    const run = await runTrial({ model, files: { 'out/keep.txt': '' } });
    const second = toolResults(run.events)[1]?.output ?? '';
    expect(second).toMatch(/^X=\n/);
    expect(second).not.toContain('/out');
  });

  it('edits files by exact replacement and says when the old text is absent or ambiguous', async () => {
    const model = new ScriptedModel([
      call('edit_file', { path: 'config.ini', old_text: 'port=80', new_text: 'port=8080' }),
      call('edit_file', { path: 'config.ini', old_text: 'missing=1', new_text: 'x' }),
      call('edit_file', { path: 'config.ini', old_text: 'debug', new_text: 'x' }),
      finish(),
    ]);
    const run = await runTrial({ model, files: { 'config.ini': 'port=80\ndebug=1\nverbose_debug=0\n' } });
    expect(readFileSync(join(run.workspace.hostPath, 'config.ini'), 'utf8')).toBe(
      'port=8080\ndebug=1\nverbose_debug=0\n',
    );
    const results = toolResults(run.events);
    expect(results[0]?.error).toBeUndefined();
    expect(results[1]?.error).toMatch(/old_text was not found in config.ini/);
    expect(results[2]?.error).toMatch(/old_text occurs 2 times in config.ini/);
  });

  it('refuses file paths that leave the workspace, also through symbolic links', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'selfharness-outside-'));
    writeFileSync(join(outside, 'secret.txt'), 'secret');
    const model = new ScriptedModel([
      call('read_file', { path: '../secret.txt' }),
      call('read_file', { path: join(outside, 'secret.txt') }),
      call('read_file', { path: 'link/secret.txt' }),
      call('write_file', { path: 'link/new.txt', content: 'x' }),
      call('write_file', { path: 'dangling', content: 'x' }),
      call('read_file', { path: 'inside.txt' }),
      finish(),
    ]);
    const workspaceFiles = { 'inside.txt': 'fine' };
    const { createLocalWorkspace } = await import('../support/local-workspace.js');
    const workspace = createLocalWorkspace(workspaceFiles);
    symlinkSync(outside, join(workspace.hostPath, 'link'));
    symlinkSync(join(outside, 'nothing-here'), join(workspace.hostPath, 'dangling'));
    const run = await runTrial({ model, workspace });
    const results = toolResults(run.events);
    expect(results[0]?.error).toMatch(/leads outside the workspace/);
    expect(results[1]?.error).toMatch(/is outside the workspace/);
    expect(results[2]?.error).toMatch(/through a symbolic link/);
    expect(results[3]?.error).toMatch(/through a symbolic link/);
    expect(results[4]?.error).toMatch(/outside the workspace|symbolic link to nothing/);
    expect(results[5]?.output).toBe('fine');
    expect(() => readFileSync(join(outside, 'new.txt'))).toThrow();
    expect(() => readFileSync(join(outside, 'nothing-here'))).toThrow();
  });

  it('stops at the turn budget', async () => {
    const model = new ScriptedModel(Array.from({ length: 6 }, () => shell('true')));
    const run = await runTrial({ model, spec: budgets({ maxTurns: 2 }) });
    expect(run.outcome).toMatchObject({ finished: false, stopReason: 'turn_budget' });
    expect(model.requests).toHaveLength(2);
  });

  it('stops at the token budget', async () => {
    const model = new ScriptedModel(Array.from({ length: 6 }, () => ({ ...shell('true'), promptTokens: 600 })));
    const run = await runTrial({ model, spec: budgets({ maxTokens: 1000 }) });
    expect(run.outcome).toMatchObject({ finished: false, stopReason: 'token_budget', promptTokens: 1200 });
    expect(model.requests).toHaveLength(2);
  });

  it('stops at the wall-time budget even while a command runs, and on an interrupt', async () => {
    const started = Date.now();
    const model = new ScriptedModel([shell('sleep 5'), finish()]);
    const run = await runTrial({ model, spec: budgets({ wallTimeSec: 1 }) });
    expect(run.outcome).toMatchObject({ finished: false, stopReason: 'wall_time' });
    expect(Date.now() - started).toBeLessThan(4000);

    const controller = new AbortController();
    controller.abort();
    const interrupted = await runTrial({ model: new ScriptedModel([finish()]), signal: controller.signal });
    expect(interrupted.outcome).toMatchObject({ finished: false, stopReason: 'interrupted' });
  });

  it('applies the per-command timeout and cuts long output, saying so', async () => {
    const model = new ScriptedModel([shell('sleep 3'), shell('seq 1 2000'), finish()]);
    const run = await runTrial({ model, spec: budgets({ commandTimeoutSec: 1, maxOutputChars: 300 }) });
    const results = toolResults(run.events);
    expect(results[0]?.error).toBe('timed out after 1 s');
    expect(results[0]?.output).toContain('timed out');
    expect(results[0]?.exitCode).toBeUndefined();
    expect(results[1]?.output).toMatch(/^1\n2\n/);
    expect(results[1]?.output).toMatch(/\[output cut: \d+ more characters not shown\]/);
    expect(results[1]?.output.length).toBeLessThan(400);
  });

  it('turns malformed arguments and unknown tools into tool errors the model sees, and goes on', async () => {
    const model = new ScriptedModel([
      { toolCalls: [{ id: 'bad', name: 'shell', argumentsText: '{"command": "ls' }] },
      call('launch_rocket', {}),
      finish(),
    ]);
    const run = await runTrial({ model });
    expect(run.outcome.finished).toBe(true);
    const results = toolResults(run.events);
    expect(results[0]?.error).toMatch(/arguments of shell are not a valid JSON object/);
    const loggedCall = run.events.find((event) => event.type === 'tool-call');
    expect(loggedCall?.data).toMatchObject({ arguments: { unparsedArguments: '{"command": "ls' } });
    expect(results[1]?.error).toMatch(/there is no tool "launch_rocket"; the tools are shell, read_file/);
    expect(model.requests[1]?.messages.at(-1)?.content).toMatch(/not a valid JSON object/);
  });

  it('reminds a model that replies without a tool call, and stops after the budget of such replies', async () => {
    const model = new ScriptedModel([{ content: 'I think…' }, { content: 'Hmm.' }, { content: 'Still thinking.' }]);
    const run = await runTrial({ model });
    expect(run.outcome).toMatchObject({ finished: false, stopReason: 'no_tool_call' });
    expect(lastToolMessage(model)).toMatch(/no tool call/);
  });

  it('logs a failed model call and stops with model_error', async () => {
    const model = new ScriptedModel([shell('true')]);
    const run = await runTrial({ model });
    expect(run.outcome).toMatchObject({ finished: false, stopReason: 'model_error' });
    const last = run.events.at(-1);
    expect(last?.type).toBe('step-create');
    expect(last?.type === 'step-create' && last.data.message).toMatch(
      /The model call failed: the script has no reply 2/,
    );
  });

  it('runs tool calls written as JSON in text, and answers with their results as a message', async () => {
    const model = new ScriptedModel([
      { content: 'Let me look.\n```json\n{"name": "shell", "arguments": {"command": "echo from-text"}}\n```' },
      { content: '<tool_call>\n{"name": "write_file", "arguments": {"path": "t.txt", "content": "x"\n</tool_call>' },
      { content: '<tool_call>{"name": "finish", "arguments": {"summary": "ok"}}</tool_call>' },
    ]);
    const run = await runTrial({ model });
    expect(run.outcome.finished).toBe(true);
    const results = toolResults(run.events);
    expect(results[0]?.output).toContain('from-text');
    expect(results[1]?.error).toMatch(/not a valid JSON object/);
    expect(model.requests[1]?.messages.at(-1)).toMatchObject({ role: 'user' });
    expect(model.requests[1]?.messages.at(-1)?.content).toMatch(/Result of shell \(call 1\):\nfrom-text/);
    const agentSteps = run.events.filter((event) => event.type === 'step-create' && event.data.role === 'agent');
    expect(agentSteps[0]?.type === 'step-create' && agentSteps[0].data.extra).toEqual({ toolCallsFromText: true });
  });

  it('delegates to a declared sub-agent, logged as a run of its own that names its parent', async () => {
    const spec = specWith({
      subagents: [
        {
          name: 'writer',
          description: 'writes files',
          instructions: 'You write files as asked.',
          tools: ['write_file'],
        },
      ],
    });
    const model = new ScriptedModel([
      call('delegate', { agent: 'writer', task: 'Write notes.txt saying hi.' }),
      (request) => {
        expect(request.tools.map((tool) => tool.name)).toEqual(['write_file', 'finish']);
        expect(request.messages[0]?.content).toMatch(/^You write files as asked\./);
        return call('write_file', { path: 'notes.txt', content: 'hi' });
      },
      finish('notes.txt written'),
      finish('all done'),
    ]);
    const run = await runTrial({ model, spec });
    expect(run.outcome.finished).toBe(true);
    expect(readFileSync(join(run.workspace.hostPath, 'notes.txt'), 'utf8')).toBe('hi');
    const start = run.events.find((event) => event.type === 'run-start');
    expect(start?.data).toMatchObject({ parentRunId: 'trial-1', relation: 'subagent', task: 'unit-task' });
    expect(start?.runId).toBe('trial-1/writer-3-1');
    expect(run.events.filter((event) => event.runId === start?.runId).map((event) => event.type)).toContain(
      'tool-call',
    );
    const parentResults = toolResults(run.events.filter((event) => event.runId === 'trial-1'));
    expect(parentResults.find((result) => result.callId === '3-1')?.output).toBe(
      'Sub-agent writer finished: notes.txt written',
    );
  });
});

describe('parseTextToolCalls', () => {
  const tools = ['shell', 'finish'];
  it('reads fenced JSON calls naming a known tool, and leaves other JSON alone', () => {
    const calls = parseTextToolCalls(
      'Data:\n```json\n{"name": "config", "value": 1}\n```\nNow:\n```json\n{"name": "shell", "arguments": "{\\"command\\": \\"ls\\"}"}\n```',
      tools,
    );
    expect(calls).toEqual([{ id: 'text-1', name: 'shell', arguments: { command: 'ls' } }]);
  });

  it('reads tool_call blocks, arrays and the function-wrapped form; keeps unparsable blocks as unparsed calls', () => {
    const calls = parseTextToolCalls(
      '<tool_call>[{"name": "shell", "arguments": {"command": "a"}}, {"function": {"name": "finish", "parameters": {}}}]</tool_call>\n<tool_call>{"name": "shell", "arguments": {"command": </tool_call>',
      tools,
    );
    expect(calls.map((item) => [item.name, item.arguments])).toEqual([
      ['shell', { command: 'a' }],
      ['finish', {}],
      ['shell', undefined],
    ]);
    expect(calls[2]?.argumentsText).toContain('"command":');
  });

  it('finds nothing in plain prose', () => {
    expect(parseTextToolCalls('All done, the file is written.', tools)).toEqual([]);
  });
});
