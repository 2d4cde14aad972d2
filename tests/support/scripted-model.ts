import type { ChatModel, ModelRequest, ModelResponse, ModelToolCall } from '../../harness/index.js';

/** One scripted reply: a response, or a function of the request (to react to what the harness sent). */
export type ScriptedStep = Partial<ModelResponse> | ((request: ModelRequest) => Partial<ModelResponse>);

/**
 * The test double for models: replies from a script, in order, and records every request, so a test can check what
 * the model was shown. When the script runs out it throws, which the runtime reports as a model error.
 */
export class ScriptedModel implements ChatModel {
  readonly requests: ModelRequest[] = [];
  private index = 0;

  constructor(
    private readonly steps: readonly ScriptedStep[],
    readonly name = 'scripted',
  ) {}

  async complete(request: ModelRequest): Promise<ModelResponse> {
    this.requests.push({ ...request, messages: [...request.messages] });
    const step = this.steps[this.index];
    this.index += 1;
    if (step === undefined) throw new Error(`the script has no reply ${this.index}`);
    const reply = typeof step === 'function' ? step(request) : step;
    return { content: '', toolCalls: [], promptTokens: 100, completionTokens: 10, ...reply };
  }
}

let counter = 0;

/** A reply that calls one tool. */
export function call(name: string, args: Record<string, unknown>, content = ''): Partial<ModelResponse> {
  counter += 1;
  const toolCall: ModelToolCall = { id: `call-${counter}`, name, arguments: args };
  return { content, toolCalls: [toolCall] };
}

/** A reply that runs a shell command. */
export const shell = (command: string) => call('shell', { command });

/** A reply that calls finish. */
export const finish = (summary = 'done') => call('finish', { summary });
