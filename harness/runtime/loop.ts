import { SystemError, type TraceEvent } from '../../core/index.js';
import type {
  ChatMessage,
  ChatModel,
  CommandResult,
  ModelResponse,
  ModelToolCall,
  ToolDefinition,
  TrialContext,
  TrialOutcome,
} from '../contracts.js';
import type { HarnessSpec, SubAgent, ToolName } from '../spec.js';
import { toolNames } from '../spec.js';
import type { AgentSession, Middleware, ToolInvocation, ToolOutcome, ToolRecord } from './middleware.js';
import { buildSystemPrompt } from './prompt.js';
import { parseTextToolCalls } from './text-tool-calls.js';
import { failed, runFileTool, toolDefinitions } from './tools.js';

/**
 * The agent runtime: a tool-calling loop. Each turn asks the model for its next message, executes the tool calls it
 * makes in the workspace, and sends the results back, until the model calls `finish` or a budget runs out. Every
 * message and every call is emitted as the same events the importers produce, with ids derived from the run id,
 * the step and the call index, so a run's log is deterministic given the model's replies.
 */

export interface RunHarnessOptions {
  readonly model: ChatModel;
  /** The model name logged with each agent step. */
  readonly modelName: string;
  readonly spec: HarnessSpec;
  /** Built for this trial (middleware keep per-run state). */
  readonly middleware: readonly Middleware[];
  readonly context: TrialContext;
  /** The clock, in milliseconds; injected in tests. */
  readonly now?: () => number;
}

const DELEGATE_TOOL = 'delegate';

/** Why a run stopped, as the runner logs it. */
export type StopReason = 'turn_budget' | 'token_budget' | 'wall_time' | 'interrupted' | 'model_error' | 'no_tool_call';

interface Totals {
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
  hasCost: boolean;
}

class StopError extends Error {
  constructor(
    readonly reason: StopReason,
    readonly detail?: string,
  ) {
    super(reason);
  }
}

/** Runs one trial with the given model and harness, and says whether the agent finished. */
export async function runHarness(options: RunHarnessOptions): Promise<TrialOutcome> {
  const { spec, context } = options;
  const now = options.now ?? Date.now;
  const controller = new AbortController();
  const onOuterAbort = () => controller.abort('interrupted');
  if (context.signal.aborted) controller.abort('interrupted');
  else context.signal.addEventListener('abort', onOuterAbort, { once: true });
  const deadline = now() + spec.budgets.wallTimeSec * 1000;
  const timer = setTimeout(() => controller.abort('wall_time'), spec.budgets.wallTimeSec * 1000);
  const totals: Totals = { promptTokens: 0, completionTokens: 0, costUsd: 0, hasCost: false };
  const trial: Trial = { options, signal: controller.signal, deadline, now, totals };
  try {
    const result = await runConversation(trial, {
      runId: context.runId,
      systemPrompt: buildSystemPrompt(spec.instructions, context.workspace.agentPath),
      instruction: context.task.instruction,
      tools: [...toolDefinitions(spec), ...delegateDefinition(spec.subagents)],
      middleware: options.middleware,
      maxTurns: spec.budgets.maxTurns,
      emit: (events) => context.emit(events),
    });
    return {
      finished: result.finished,
      ...(result.stopReason ? { stopReason: result.stopReason } : {}),
      ...(result.stopDetail ? { stopDetail: result.stopDetail } : {}),
      promptTokens: totals.promptTokens,
      completionTokens: totals.completionTokens,
      ...(totals.hasCost ? { costUsd: totals.costUsd } : {}),
    };
  } finally {
    clearTimeout(timer);
    context.signal.removeEventListener('abort', onOuterAbort);
  }
}

interface Trial {
  readonly options: RunHarnessOptions;
  readonly signal: AbortSignal;
  readonly deadline: number;
  readonly now: () => number;
  readonly totals: Totals;
}

interface Conversation {
  readonly runId: string;
  readonly systemPrompt: string;
  readonly instruction: string;
  readonly tools: readonly ToolDefinition[];
  readonly middleware: readonly Middleware[];
  readonly maxTurns: number;
  readonly emit: (events: readonly TraceEvent[]) => Promise<void>;
}

interface ConversationResult {
  finished: boolean;
  stopReason?: StopReason;
  stopDetail?: string;
  summary: string;
}

function delegateDefinition(subagents: readonly SubAgent[]): ToolDefinition[] {
  if (subagents.length === 0) return [];
  return [
    {
      name: DELEGATE_TOOL,
      description: `Hand a self-contained piece of work to a sub-agent and get its summary back. Sub-agents: ${subagents
        .map((agent) => `${agent.name} (${agent.description})`)
        .join('; ')}.`,
      parameters: {
        type: 'object',
        properties: {
          agent: { type: 'string', enum: subagents.map((agent) => agent.name) },
          task: { type: 'string', description: 'what the sub-agent should do, in full' },
        },
        required: ['agent', 'task'],
      },
    },
  ];
}

async function runConversation(trial: Trial, conversation: Conversation): Promise<ConversationResult> {
  const { options, signal, totals } = trial;
  const { spec, context, model } = options;
  const { runId, middleware } = conversation;
  const budgets = spec.budgets;
  const toolNameList = conversation.tools.map((tool) => tool.name);
  const messages: ChatMessage[] = [];
  const history: ToolRecord[] = [];
  let step = 0;
  let turn = 0;
  let finishRefusals = 0;
  let repliesWithoutCall = 0;

  const remainingMs = () => Math.max(1, trial.deadline - trial.now());
  const execOptions = (timeoutSec: number) => ({
    timeoutMs: Math.min(timeoutSec * 1000, remainingMs()),
    maxOutputBytes: Math.max(budgets.maxOutputChars * 4, 65_536),
  });
  const session: AgentSession = {
    runId,
    task: context.task,
    workspace: context.workspace,
    spec,
    budgets,
    get turn() {
      return turn;
    },
    history,
    signal,
    shell: (command, execution) => context.workspace.exec(command, execution),
    runCheck: (command) => context.workspace.exec(command, execOptions(budgets.commandTimeoutSec)),
  };

  const emitMessage = async (
    role: 'system' | 'user' | 'agent',
    message: string,
    extra: Partial<Extract<TraceEvent, { type: 'step-create' }>['data']> = {},
  ) => {
    step += 1;
    await conversation.emit([
      { id: `${runId}:step-${step}`, runId, type: 'step-create', data: { step, role, message, ...extra } },
    ]);
    return step;
  };
  const addUserMessage = async (content: string, source: string) => {
    messages.push({ role: 'user', content });
    await emitMessage('user', content, { extra: { source } });
  };

  messages.push({ role: 'system', content: conversation.systemPrompt });
  await emitMessage('system', conversation.systemPrompt);
  messages.push({ role: 'user', content: conversation.instruction });
  await emitMessage('user', conversation.instruction);

  const notifyError = async (phase: 'model' | 'tool', message: string) => {
    for (const item of middleware) await item.onError?.(session, { phase, message });
  };

  const stopReasonOf = (): StopReason => (signal.reason === 'wall_time' ? 'wall_time' : 'interrupted');

  const executeCall = async (
    call: ModelToolCall,
    callId: string,
  ): Promise<{ outcome: ToolOutcome; finished: boolean }> => {
    if (call.arguments === undefined) {
      const text = (call.argumentsText ?? '').slice(0, 300);
      return {
        outcome: failed(
          `the arguments of ${call.name} are not a valid JSON object (${JSON.stringify(text)}); send them again as one JSON object`,
        ),
        finished: false,
      };
    }
    if (!toolNameList.includes(call.name))
      return {
        outcome: failed(`there is no tool ${JSON.stringify(call.name)}; the tools are ${toolNameList.join(', ')}`),
        finished: false,
      };
    const invocation: ToolInvocation = {
      callId,
      name: call.name,
      arguments: call.arguments,
      ...(call.name === 'shell' && typeof call.arguments.command === 'string'
        ? { command: call.arguments.command }
        : {}),
    };
    const notes: string[] = [];
    for (const item of middleware) {
      const decision = await item.beforeToolCall?.(session, invocation);
      if (decision && 'block' in decision) {
        const outcome: ToolOutcome = {
          output: `Blocked by the harness: ${decision.block}`,
          error: `blocked by ${item.name}`,
          notes,
        };
        history.push({ turn, invocation, outcome, blocked: true });
        return { outcome, finished: false };
      }
      if (decision && 'warn' in decision) notes.push(decision.warn);
    }
    if (call.name === 'finish') {
      for (const item of middleware) {
        const verdict = await item.beforeFinish?.(session, invocation);
        if (verdict && finishRefusals < budgets.maxFinishRefusals) {
          finishRefusals += 1;
          const outcome: ToolOutcome = {
            output: `Finish refused: ${verdict.refuse}`,
            error: `finish refused by ${item.name}`,
            notes,
          };
          history.push({ turn, invocation, outcome, blocked: true });
          return { outcome, finished: false };
        }
      }
      const outcome: ToolOutcome = { output: 'Finished.', notes };
      history.push({ turn, invocation, outcome, blocked: false });
      return { outcome, finished: true };
    }
    let outcome: ToolOutcome;
    try {
      outcome = await runTool(invocation);
    } catch (error) {
      if (signal.aborted) throw new StopError(stopReasonOf());
      await notifyError('tool', (error as Error).message);
      if (error instanceof SystemError) throw error;
      outcome = failed(`${call.name} failed: ${(error as Error).message}`);
    }
    outcome = { ...outcome, notes: [...notes, ...outcome.notes] };
    for (const item of middleware) outcome = (await item.afterToolCall?.(session, invocation, outcome)) ?? outcome;
    history.push({ turn, invocation, outcome, blocked: false });
    return { outcome, finished: false };
  };

  const runTool = async (invocation: ToolInvocation): Promise<ToolOutcome> => {
    const name = invocation.name;
    if (name === 'shell') {
      if (invocation.command === undefined || invocation.command.trim() === '')
        return failed('shell needs a non-empty string argument "command"');
      const timeoutSec = budgets.commandTimeoutSec;
      const result = await abortable(session.shell(invocation.command, execOptions(timeoutSec)), signal);
      return shellOutcome(result, timeoutSec);
    }
    if (name === DELEGATE_TOOL) return delegate(trial, conversation, invocation, step);
    return runFileTool(name as Exclude<ToolName, 'shell' | 'finish'>, invocation.arguments, context.workspace, spec);
  };

  let finished = false;
  let stopReason: StopReason | undefined;
  let stopDetail: string | undefined;
  let summary = '';
  try {
    for (const item of middleware) await item.start?.(session);
    while (!finished) {
      if (signal.aborted) throw new StopError(stopReasonOf());
      if (turn >= conversation.maxTurns) throw new StopError('turn_budget');
      if (totals.promptTokens + totals.completionTokens >= budgets.maxTokens) throw new StopError('token_budget');
      for (const item of middleware) {
        for (const message of (await item.beforeModelCall?.(session)) ?? []) await addUserMessage(message, item.name);
      }
      let response: ModelResponse;
      try {
        response = await abortable(
          model.complete({ messages: [...messages], tools: conversation.tools, signal }),
          signal,
        );
      } catch (error) {
        if (signal.aborted) throw new StopError(stopReasonOf());
        const message = (error as Error).message;
        await notifyError('model', message);
        await emitMessage('system', `The model call failed: ${message}`, { extra: { error: message } });
        throw new StopError('model_error', `The model call failed: ${message}`);
      }
      turn += 1;
      for (const item of middleware) response = (await item.afterModelCall?.(session, response)) ?? response;
      totals.promptTokens += response.promptTokens ?? 0;
      totals.completionTokens += response.completionTokens ?? 0;
      if (response.costUsd !== undefined) {
        totals.costUsd += response.costUsd;
        totals.hasCost = true;
      }
      let calls = response.toolCalls;
      const fromText = calls.length === 0;
      if (fromText) calls = parseTextToolCalls(response.content, toolNameList);
      const agentStep = await emitMessage('agent', response.content, {
        model: options.modelName,
        ...(response.reasoning ? { reasoning: response.reasoning } : {}),
        ...(response.promptTokens !== undefined ? { promptTokens: response.promptTokens } : {}),
        ...(response.completionTokens !== undefined ? { completionTokens: response.completionTokens } : {}),
        ...(response.costUsd !== undefined ? { costUsd: response.costUsd } : {}),
        ...(fromText && calls.length > 0 ? { extra: { toolCallsFromText: true } } : {}),
      });
      messages.push(
        fromText
          ? { role: 'assistant', content: response.content }
          : { role: 'assistant', content: response.content, toolCalls: calls },
      );
      if (calls.length === 0) {
        repliesWithoutCall += 1;
        if (repliesWithoutCall >= budgets.maxReplyWithoutToolCall) throw new StopError('no_tool_call');
        await addUserMessage(
          'Your reply contained no tool call. Use the tools to work on the task, and call finish when it is done.',
          'runtime',
        );
        continue;
      }
      repliesWithoutCall = 0;
      const textResults: string[] = [];
      for (const [index, call] of calls.entries()) {
        const callId = `${agentStep}-${index + 1}`;
        const args = call.arguments ?? { unparsedArguments: call.argumentsText ?? '' };
        await conversation.emit([
          {
            id: `${runId}:call-${callId}`,
            runId,
            type: 'tool-call',
            data: {
              step: agentStep,
              callId,
              tool: call.name,
              arguments: args,
              ...(call.name === 'shell' && typeof args.command === 'string' ? { command: args.command } : {}),
            },
          },
        ]);
        const { outcome, finished: isFinish } = await executeCall(call, callId);
        const content = renderOutcome(outcome, budgets.maxOutputChars);
        await conversation.emit([
          {
            id: `${runId}:result-${callId}`,
            runId,
            type: 'tool-result',
            data: {
              step: agentStep,
              callId,
              output: content,
              ...(outcome.exitCode !== undefined ? { exitCode: outcome.exitCode } : {}),
              ...(outcome.error !== undefined ? { error: outcome.error } : {}),
            },
          },
        ]);
        if (fromText) textResults.push(`Result of ${call.name} (call ${index + 1}):\n${content}`);
        else messages.push({ role: 'tool', toolCallId: call.id, content });
        if (isFinish) {
          finished = true;
          summary = typeof call.arguments?.summary === 'string' ? call.arguments.summary : '';
          break;
        }
      }
      if (fromText && !finished) messages.push({ role: 'user', content: textResults.join('\n\n') });
    }
  } catch (error) {
    if (!(error instanceof StopError)) throw error;
    stopReason = error.reason;
    stopDetail = error.detail;
  } finally {
    for (const item of middleware) await item.end?.(session);
  }
  return { finished, ...(stopReason ? { stopReason } : {}), ...(stopDetail ? { stopDetail } : {}), summary };
}

/** The text the model reads for a tool result: output (cut to the budget), how a command ended, harness notes. */
export function renderOutcome(outcome: ToolOutcome, maxChars: number): string {
  let text = outcome.output;
  if (text.length > maxChars)
    text = `${text.slice(0, maxChars)}\n[output cut: ${text.length - maxChars} more characters not shown]`;
  const lines = [text.endsWith('\n') ? text.slice(0, -1) : text];
  if (outcome.timedOut) lines.push('[the command timed out and was stopped]');
  else if (outcome.exitCode !== undefined) lines.push(`[exit code ${outcome.exitCode}]`);
  for (const note of outcome.notes) lines.push(`[harness] ${note}`);
  return lines.filter((line, index) => index > 0 || line !== '').join('\n');
}

function shellOutcome(result: CommandResult, timeoutSec: number): ToolOutcome {
  const notes: string[] = [];
  if (result.outputTruncated) notes.push('The command printed more output than is kept; only the first part is shown.');
  return {
    output: result.output,
    ...(result.exitCode !== null ? { exitCode: result.exitCode } : {}),
    ...(result.timedOut ? { timedOut: true, error: `timed out after ${timeoutSec} s` } : {}),
    notes,
  };
}

/** Rejects as soon as the signal aborts, so a hung model call or command cannot outlive the budget. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error('aborted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Runs a sub-agent: the same model with the sub-agent's instructions and tools, its own turn budget, no middleware,
 * in the same workspace. Its steps are logged as a run of their own that names the parent run (relation `subagent`);
 * its tokens count against the trial's budget. The parent reads the sub-agent's finish summary, or why it stopped.
 */
async function delegate(
  trial: Trial,
  parent: Conversation,
  invocation: ToolInvocation,
  parentStep: number,
): Promise<ToolOutcome> {
  const { spec, context, modelName } = trial.options;
  const name = invocation.arguments.agent;
  const task = invocation.arguments.task;
  const agent = spec.subagents.find((candidate) => candidate.name === name);
  if (!agent)
    return failed(
      `there is no sub-agent ${JSON.stringify(name)}; choose one of ${spec.subagents.map((a) => a.name).join(', ')}`,
    );
  if (typeof task !== 'string' || task.trim() === '')
    return failed('delegate needs a non-empty string argument "task"');
  const runId = `${parent.runId}/${agent.name}-${invocation.callId}`;
  await parent.emit([
    {
      id: `${runId}:start`,
      runId,
      type: 'run-start',
      data: {
        task: context.task.id,
        model: modelName,
        parentRunId: parent.runId,
        relation: 'subagent',
        instruction: task,
        metadata: { subagent: agent.name, parentStep },
      },
    },
  ]);
  const result = await runConversation(trial, {
    runId,
    systemPrompt: buildSystemPrompt(
      { system: agent.instructions, bootstrap: '', execution: '', verification: '', recovery: '' },
      context.workspace.agentPath,
    ),
    instruction: task,
    tools: toolDefinitions(
      spec,
      [...new Set<ToolName>([...agent.tools, 'finish'])].filter((tool) => toolNames.includes(tool)),
    ),
    middleware: [],
    maxTurns: agent.maxTurns,
    emit: parent.emit,
  });
  await parent.emit([
    {
      id: `${runId}:end`,
      runId,
      type: 'run-end',
      data: { outcome: 'unknown', ...(result.stopReason ? { failureReason: result.stopReason } : {}) },
    },
  ]);
  if (result.stopReason === 'wall_time' || result.stopReason === 'interrupted' || result.stopReason === 'token_budget')
    throw new StopError(result.stopReason);
  return result.finished
    ? { output: `Sub-agent ${agent.name} finished: ${result.summary || '(no summary)'}`, notes: [] }
    : failed(`sub-agent ${agent.name} stopped without finishing (${result.stopReason ?? 'unknown'})`);
}
