import OpenAI from 'openai';
import type { ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions/completions.js';
import { UserError } from '../../core/index.js';
import type { ChatMessage, ChatModel, ModelRequest, ModelResponse, ModelToolCall } from '../contracts.js';

/**
 * The one adapter to the `openai` SDK for chat with tools: any OpenAI-compatible endpoint (a hosted API, vLLM,
 * Ollama). Only this file knows the SDK's types; the runtime speaks `ChatModel`.
 */

export interface OpenAiModelOptions {
  /** The model name the endpoint knows, e.g. `gpt-4.1-mini` or `Qwen/Qwen3-8B`. */
  readonly model: string;
  /** Ends in `/v1` for most servers; default: OpenAI's. */
  readonly baseUrl?: string;
  readonly apiKey?: string;
  /** Per request, milliseconds. */
  readonly timeoutMs?: number;
  /** Retries of rate limits, server errors and dropped connections (the SDK backs off between them). */
  readonly maxRetries?: number;
  readonly temperature?: number;
}

/** What `openai:MODEL` reads from the environment. */
export interface OpenAiEnvironment {
  readonly SELFHARNESS_LLM_BASE_URL?: string;
  readonly SELFHARNESS_LLM_API_KEY?: string;
  readonly SELFHARNESS_LLM_TIMEOUT_MS?: string;
  readonly SELFHARNESS_LLM_MAX_RETRIES?: string;
}

/**
 * Options for `openai:MODEL` from the environment: base URL and key from `SELFHARNESS_LLM_BASE_URL` and
 * `SELFHARNESS_LLM_API_KEY`, timeout and retries from `SELFHARNESS_LLM_TIMEOUT_MS` (default 120000) and
 * `SELFHARNESS_LLM_MAX_RETRIES` (default 3). A local server needs no key; OpenAI's own endpoint does.
 */
export function openAiOptionsFromEnvironment(model: string, environment: OpenAiEnvironment): OpenAiModelOptions {
  const baseUrl = environment.SELFHARNESS_LLM_BASE_URL?.trim() || undefined;
  const apiKey = environment.SELFHARNESS_LLM_API_KEY?.trim() || undefined;
  if (!baseUrl && !apiKey)
    throw new UserError(
      `Model openai:${model} needs an endpoint: set SELFHARNESS_LLM_BASE_URL (e.g. http://localhost:8000/v1) and, for a hosted API, SELFHARNESS_LLM_API_KEY`,
    );
  return {
    model,
    ...(baseUrl ? { baseUrl } : {}),
    ...(apiKey ? { apiKey } : {}),
    timeoutMs: positiveInteger(environment.SELFHARNESS_LLM_TIMEOUT_MS, 'SELFHARNESS_LLM_TIMEOUT_MS', 120_000),
    maxRetries: positiveInteger(environment.SELFHARNESS_LLM_MAX_RETRIES, 'SELFHARNESS_LLM_MAX_RETRIES', 3, true),
  };
}

function positiveInteger(text: string | undefined, name: string, fallback: number, allowZero = false): number {
  if (text === undefined || text.trim() === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1))
    throw new UserError(`${name}=${text} is not a ${allowZero ? 'non-negative' : 'positive'} integer`);
  return value;
}

/** A chat model behind an OpenAI-compatible endpoint. */
export function createOpenAiModel(options: OpenAiModelOptions): ChatModel {
  const client = new OpenAI({
    baseURL: options.baseUrl ?? null,
    apiKey: options.apiKey ?? 'not-needed',
    timeout: options.timeoutMs ?? 120_000,
    maxRetries: options.maxRetries ?? 3,
  });
  const retries = options.maxRetries ?? 3;
  return {
    name: `openai:${options.model}`,
    /**
     * The SDK retries failed HTTP calls (5xx, 429, timeouts); an answer that arrives but is not a completion (a body
     * that is not JSON, no choice) is retried here, within the same limit, before the error reaches the runtime.
     */
    async complete(request: ModelRequest): Promise<ModelResponse> {
      for (let attempt = 0; ; attempt++) {
        try {
          return await completeOnce(request);
        } catch (error) {
          if (!isMalformedReply(error) || attempt >= retries || request.signal?.aborted) throw error;
          await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
        }
      }
    },
  };

  async function completeOnce(request: ModelRequest): Promise<ModelResponse> {
    const tools: ChatCompletionTool[] = request.tools.map((tool) => ({
      type: 'function',
      function: { name: tool.name, description: tool.description, parameters: tool.parameters },
    }));
    const completion = await client.chat.completions.create(
      {
        model: options.model,
        messages: request.messages.map(toOpenAiMessage),
        ...(tools.length > 0 ? { tools, tool_choice: 'auto' as const } : {}),
        ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
      },
      request.signal ? { signal: request.signal } : {},
    );
    const choice = completion.choices?.[0];
    if (!choice)
      throw new MalformedReplyError(
        `the endpoint answered without a choice (completion ${completion.id ?? 'without id'})`,
      );
    const message = choice.message as typeof choice.message & { reasoning_content?: unknown; reasoning?: unknown };
    const reasoning = typeof message.reasoning_content === 'string' ? message.reasoning_content : message.reasoning;
    const toolCalls: ModelToolCall[] = (message.tool_calls ?? []).flatMap((call) =>
      call.type === 'function' ? [toToolCall(call.id, call.function.name, call.function.arguments)] : [],
    );
    return {
      content: message.content ?? '',
      ...(typeof reasoning === 'string' && reasoning !== '' ? { reasoning } : {}),
      toolCalls,
      ...(completion.usage
        ? { promptTokens: completion.usage.prompt_tokens, completionTokens: completion.usage.completion_tokens }
        : {}),
    };
  }
}

/** An answer that came but is no completion: retried like a failed call. */
class MalformedReplyError extends Error {}

function isMalformedReply(error: unknown): boolean {
  return error instanceof MalformedReplyError || error instanceof SyntaxError;
}

/** Parses a call's arguments; text that is not a JSON object is kept for the runtime to report to the model. */
function toToolCall(id: string, name: string, text: string): ModelToolCall {
  try {
    const value: unknown = JSON.parse(text === '' ? '{}' : text);
    if (value !== null && typeof value === 'object' && !Array.isArray(value))
      return { id, name, arguments: value as Record<string, unknown> };
  } catch {
    // Reported to the model by the runtime, from argumentsText.
  }
  return { id, name, argumentsText: text };
}

function toOpenAiMessage(message: ChatMessage): ChatCompletionMessageParam {
  switch (message.role) {
    case 'system':
      return { role: 'system', content: message.content };
    case 'user':
      return { role: 'user', content: message.content };
    case 'tool':
      return { role: 'tool', tool_call_id: message.toolCallId, content: message.content };
    case 'assistant':
      return message.toolCalls && message.toolCalls.length > 0
        ? {
            role: 'assistant',
            content: message.content === '' ? null : message.content,
            tool_calls: message.toolCalls.map((call) => ({
              id: call.id,
              type: 'function' as const,
              function: { name: call.name, arguments: call.argumentsText ?? JSON.stringify(call.arguments ?? {}) },
            })),
          }
        : { role: 'assistant', content: message.content };
  }
}
