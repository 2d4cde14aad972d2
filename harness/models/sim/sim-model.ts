import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../../core/errors.js';
import type {
  ChatMessage,
  ChatModel,
  ModelFactory,
  ModelRequest,
  ModelResponse,
  ModelToolCall,
  TaskSpec,
  ToolDefinition,
} from '../../contracts.js';
import { type SimAction, type SimObservation, SimPolicy, shellQuote } from './policy.js';
import { findSimProfile, SIM_PRICE_PER_MILLION_TOKENS, type SimProfile, simProfiles } from './profiles.js';
import { createRandom } from './random.js';
import { splitSolutionSteps } from './solution-steps.js';

/**
 * `sim:PROFILE`: a declared test double for a model, for demonstrations and tests where no model endpoint is
 * reachable. It works from the task's reference solution and injects its profile's failure mechanisms, reacting only
 * to the messages of each request (instructions, tool descriptions, tool results, injected messages), never to the
 * harness spec. Its figures show that the pipeline works; they are no claim about real models.
 */
export function createSimModelFactory(profileName: string): ModelFactory {
  const profile = findSimProfile(profileName);
  if (!profile) {
    throw new UserError(
      `Unknown simulated model profile "${profileName}": use sim:${Object.keys(simProfiles).join(', sim:')}`,
    );
  }
  return ({ task, seed }) => new SimModel(profile, task, readSolution(task), seed);
}

function readSolution(task: TaskSpec): string {
  const path = join(task.directory, 'solution', 'solve.sh');
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new UserError(
      `The simulated model works from the task's reference solution, and ${path} cannot be read ` +
        `(${(error as NodeJS.ErrnoException).code ?? String(error)}): add solution/solve.sh to task ${task.id}, ` +
        'or run the task with another model.',
      { cause: error },
    );
  }
}

/** One trial's simulated model. Its calls must come in conversation order; each answers the latest request. */
export class SimModel implements ChatModel {
  readonly name: string;
  private readonly policy: SimPolicy;
  private lastCallId: string | undefined;
  private turn = 0;

  constructor(profile: SimProfile, task: TaskSpec, solution: string, seed: number) {
    this.name = `sim:${profile.name}`;
    this.policy = new SimPolicy(
      profile,
      splitSolutionSteps(solution),
      { instruction: task.instruction, requiredArtifacts: task.requiredArtifacts ?? [] },
      createRandom(seed),
    );
  }

  async complete(request: ModelRequest): Promise<ModelResponse> {
    request.signal?.throwIfAborted();
    const observation = this.observe(request);
    const action = this.policy.next(observation);
    this.turn += 1;
    const response = this.render(action, request.tools, this.policy.lastCallMalformed);
    const call = response.toolCalls[0];
    this.lastCallId = call?.id;
    const promptCharacters =
      request.messages.reduce((sum, message) => sum + messageCharacters(message), 0) +
      JSON.stringify(request.tools).length;
    const completionCharacters =
      response.content.length +
      (call ? (call.argumentsText ?? JSON.stringify(call.arguments)).length + call.name.length : 0);
    const promptTokens = Math.ceil(promptCharacters / 4);
    const completionTokens = Math.max(1, Math.ceil(completionCharacters / 4));
    const costUsd =
      (promptTokens * SIM_PRICE_PER_MILLION_TOKENS.prompt +
        completionTokens * SIM_PRICE_PER_MILLION_TOKENS.completion) /
      1_000_000;
    return { ...response, promptTokens, completionTokens, costUsd };
  }

  /** Splits the request into what is new to the model since its previous turn. */
  private observe(request: ModelRequest): SimObservation {
    const messages = request.messages;
    let lastAssistant = -1;
    messages.forEach((message, index) => {
      if (message.role === 'assistant') lastAssistant = index;
    });
    if (this.turn === 0) {
      const before = lastAssistant === -1 ? messages : messages.slice(0, lastAssistant);
      const instructions = [
        ...before.filter((message) => message.role !== 'tool').map((message) => message.content),
        ...request.tools.map((tool) => `${tool.name}: ${tool.description}`),
      ].join('\n\n');
      return { instructions, otherMessages: [] };
    }
    let lastResult: string | undefined;
    const otherMessages: string[] = [];
    for (const message of messages.slice(lastAssistant + 1)) {
      if (message.role === 'tool' && message.toolCallId === this.lastCallId && lastResult === undefined) {
        lastResult = message.content;
      } else if (message.role !== 'assistant') {
        otherMessages.push(message.content);
      }
    }
    return { ...(lastResult === undefined ? {} : { lastResult }), otherMessages };
  }

  private render(action: SimAction, tools: readonly ToolDefinition[], malformed: boolean): ModelResponse {
    const available = new Set(tools.map((tool) => tool.name));
    const id = `sim-call-${this.turn}`;
    let name: string;
    let args: Record<string, unknown>;
    switch (action.kind) {
      case 'finish':
        if (!available.has('finish')) return { content: action.summary, toolCalls: [] };
        return {
          content: action.summary,
          toolCalls: [{ id, name: 'finish', arguments: { summary: action.summary } }],
        };
      case 'read_file':
        [name, args] = available.has('read_file')
          ? ['read_file', { path: action.path }]
          : ['shell', { command: `cat ${shellQuote(action.path)}` }];
        break;
      case 'list_directory':
        [name, args] = available.has('list_directory')
          ? ['list_directory', { path: action.path }]
          : ['shell', { command: `ls -la ${shellQuote(action.path)}` }];
        break;
      case 'shell':
        [name, args] = ['shell', { command: action.command }];
        break;
    }
    const call: ModelToolCall = malformed
      ? { id, name, argumentsText: malformedText(args, this.turn) }
      : { id, name, arguments: args };
    return { content: narrate(action), toolCalls: [call] };
  }
}

/** Arguments text that is not JSON, the two ways models most often get it wrong: cut short, or single-quoted. */
function malformedText(args: Record<string, unknown>, turn: number): string {
  const json = JSON.stringify(args);
  return turn % 2 === 0 ? json.slice(0, -1) : json.replace(/"/g, "'");
}

function narrate(action: SimAction): string {
  if (action.kind === 'read_file') return `Let me read ${action.path}.`;
  if (action.kind === 'list_directory') return `Let me see what is in ${action.path}.`;
  if (action.kind === 'finish') return action.summary;
  switch (action.purpose) {
    case 'explore':
      return 'Let me look around the workspace.';
    case 'check-program':
      return `Checking whether ${action.program ?? 'the program'} is installed.`;
    case 'verify':
      return 'Checking that the output files exist before finishing.';
    default:
      return 'Running the next command.';
  }
}

function messageCharacters(message: ChatMessage): number {
  if (message.role !== 'assistant') return message.content.length;
  return (
    message.content.length +
    (message.toolCalls ?? []).reduce(
      (sum, call) => sum + call.name.length + (call.argumentsText ?? JSON.stringify(call.arguments ?? {})).length,
      0,
    )
  );
}
