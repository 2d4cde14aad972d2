import OpenAI from 'openai';
import { z } from 'zod';
import { describeSchemaError, SystemError, UserError } from '../core/index.js';

/**
 * The one adapter over the `openai` SDK for structured JSON chat completions, used wherever analytics asks a model for
 * a judgement (diagnoses). Any OpenAI-compatible endpoint works (vLLM, Ollama, a hosted API). Everything else depends
 * on the small `Llm` interface, so tests and notebooks can hand in another implementation.
 */

/** How structured output is requested: `json_object` is the most widely supported, `json_schema` the strictest. */
export const JsonMode = z.enum(['json_object', 'json_schema', 'none']);
export type JsonMode = z.infer<typeof JsonMode>;

export interface LlmConfig {
  /** Base URL of the OpenAI-compatible API, usually ending in `/v1`. */
  baseUrl: string;
  model: string;
  apiKey?: string;
  /** Time allowed for one HTTP request before it counts as failed and is retried. */
  timeoutMs: number;
  /** Retries after the first attempt, for rate limits (429), server errors (5xx), timeouts and lost connections. */
  maxRetries: number;
  /** The first retry waits about this long; each further retry doubles it, up to `maxBackoffMs`. */
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** Requests in flight at once, across all callers of one `Llm`. */
  concurrency: number;
  jsonMode: JsonMode;
}

export const DEFAULT_LLM_SETTINGS = {
  timeoutMs: 120_000,
  maxRetries: 4,
  initialBackoffMs: 1_000,
  maxBackoffMs: 30_000,
  concurrency: 4,
  jsonMode: 'json_object',
} as const satisfies Partial<LlmConfig>;

/** The environment variables that configure the endpoint, named once for messages and docs. */
export const LLM_ENVIRONMENT = {
  baseUrl: 'SELFHARNESS_LLM_BASE_URL',
  model: 'SELFHARNESS_LLM_MODEL',
  apiKey: 'SELFHARNESS_LLM_API_KEY',
  timeoutMs: 'SELFHARNESS_LLM_TIMEOUT_MS',
  maxRetries: 'SELFHARNESS_LLM_MAX_RETRIES',
  initialBackoffMs: 'SELFHARNESS_LLM_BACKOFF_MS',
  jsonMode: 'SELFHARNESS_LLM_JSON_MODE',
} as const;

/**
 * Reads the endpoint's configuration from the environment, with `overrides` (command-line flags) taking precedence.
 * Throws a `UserError` that says which variable to set when the base URL or the model is missing, or a number is not
 * one, so a misconfiguration is reported before anything is sent.
 */
export function readLlmConfig(
  environment: Record<string, string | undefined> = process.env,
  overrides: Partial<LlmConfig> = {},
): LlmConfig {
  const baseUrl = overrides.baseUrl ?? nonEmpty(environment[LLM_ENVIRONMENT.baseUrl]);
  if (!baseUrl) {
    throw new UserError(
      `No model endpoint configured: set ${LLM_ENVIRONMENT.baseUrl} to an OpenAI-compatible API (e.g. http://localhost:11434/v1 for Ollama, http://localhost:8000/v1 for vLLM), ${LLM_ENVIRONMENT.model} to the model name, and ${LLM_ENVIRONMENT.apiKey} if the endpoint needs a key.`,
    );
  }
  try {
    new URL(baseUrl);
  } catch {
    throw new UserError(
      `${LLM_ENVIRONMENT.baseUrl} is not a URL: "${baseUrl}". Set it to the API's base URL, e.g. http://localhost:8000/v1.`,
    );
  }
  const model = overrides.model ?? nonEmpty(environment[LLM_ENVIRONMENT.model]);
  if (!model) {
    throw new UserError(
      `No model named: set ${LLM_ENVIRONMENT.model} (or pass --model) to a model the endpoint at ${baseUrl} serves.`,
    );
  }
  const jsonModeText = environment[LLM_ENVIRONMENT.jsonMode];
  const jsonMode =
    overrides.jsonMode ?? (jsonModeText ? JsonMode.safeParse(jsonModeText).data : DEFAULT_LLM_SETTINGS.jsonMode);
  if (!jsonMode) {
    throw new UserError(
      `${LLM_ENVIRONMENT.jsonMode} must be one of ${JsonMode.options.join(', ')}, not "${jsonModeText}".`,
    );
  }
  return {
    baseUrl,
    model,
    apiKey: overrides.apiKey ?? nonEmpty(environment[LLM_ENVIRONMENT.apiKey]),
    timeoutMs: overrides.timeoutMs ?? readCount(environment, 'timeoutMs', DEFAULT_LLM_SETTINGS.timeoutMs, 1),
    maxRetries: overrides.maxRetries ?? readCount(environment, 'maxRetries', DEFAULT_LLM_SETTINGS.maxRetries, 0),
    initialBackoffMs:
      overrides.initialBackoffMs ??
      readCount(environment, 'initialBackoffMs', DEFAULT_LLM_SETTINGS.initialBackoffMs, 0),
    maxBackoffMs: overrides.maxBackoffMs ?? DEFAULT_LLM_SETTINGS.maxBackoffMs,
    concurrency: overrides.concurrency ?? DEFAULT_LLM_SETTINGS.concurrency,
    jsonMode,
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function readCount(
  environment: Record<string, string | undefined>,
  key: 'timeoutMs' | 'maxRetries' | 'initialBackoffMs',
  fallback: number,
  minimum: number,
): number {
  const text = nonEmpty(environment[LLM_ENVIRONMENT[key]]);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < minimum) {
    throw new UserError(`${LLM_ENVIRONMENT[key]} must be a whole number of at least ${minimum}, not "${text}".`);
  }
  return value;
}

export interface JsonCompletionRequest {
  system: string;
  user: string;
  /** Names the expected shape for `json_schema` mode. */
  schemaName?: string;
  temperature?: number;
  maxTokens?: number;
}

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
}

/**
 * A model's answer: the parsed value, or why it was rejected. Malformed output is an expected outcome per item (kept
 * and retried later), so it is returned, not thrown; `content` is the raw text in both cases.
 */
export type JsonCompletion<T> =
  | { ok: true; value: T; content: string; usage?: TokenUsage; attempts: number }
  | { ok: false; reason: string; content: string; usage?: TokenUsage; attempts: number };

/** A model that answers with JSON. The diagnosis (and anything else that asks a model for a judgement) needs only this. */
export interface Llm {
  readonly model: string;
  completeJson<T>(request: JsonCompletionRequest, schema: z.ZodType<T>): Promise<JsonCompletion<T>>;
}

/**
 * The endpoint failed for one request even after retries (rate limits, server errors, timeouts), or answered with
 * something that is no chat completion. The caller counts it and goes on; the request can be made again later.
 */
export class LlmRequestError extends SystemError {
  constructor(
    message: string,
    readonly attempts: number,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * `Llm` over an OpenAI-compatible chat completions endpoint. Retries are its own (the SDK's are off) so that
 * their count, backoff and reporting are the same for every endpoint: exponential backoff with jitter, honouring a
 * `retry-after` header. A semaphore caps the requests in flight.
 */
export class OpenAiLlm implements Llm {
  readonly model: string;
  private readonly client: OpenAI;
  private readonly slots: Semaphore;

  constructor(
    readonly config: LlmConfig,
    private readonly sleep: (milliseconds: number) => Promise<void> = defaultSleep,
  ) {
    this.model = config.model;
    this.client = new OpenAI({
      baseURL: config.baseUrl,
      // Local servers (vLLM, Ollama) need no key, but the SDK insists on one.
      apiKey: config.apiKey ?? 'no-key',
      timeout: config.timeoutMs,
      maxRetries: 0,
    });
    this.slots = new Semaphore(Math.max(1, config.concurrency));
  }

  async completeJson<T>(request: JsonCompletionRequest, schema: z.ZodType<T>): Promise<JsonCompletion<T>> {
    const { completion, attempts } = await this.slots.run(() => this.createWithRetries(request, schema));
    const choice = completion.choices?.[0];
    const content = choice?.message?.content ?? '';
    const usage = completion.usage
      ? { promptTokens: completion.usage.prompt_tokens, completionTokens: completion.usage.completion_tokens }
      : undefined;
    if (!choice) return { ok: false, reason: 'the reply has no choices', content, usage, attempts };
    if (choice.finish_reason === 'length') {
      return { ok: false, reason: 'the output was cut off at the token limit', content, usage, attempts };
    }
    return { ...parseJsonReply(content, schema), content, usage, attempts };
  }

  private async createWithRetries<T>(
    request: JsonCompletionRequest,
    schema: z.ZodType<T>,
  ): Promise<{ completion: OpenAI.Chat.Completions.ChatCompletion; attempts: number }> {
    const body: OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming = {
      model: this.config.model,
      messages: [
        { role: 'system', content: request.system },
        { role: 'user', content: request.user },
      ],
      temperature: request.temperature ?? 0,
      ...(request.maxTokens !== undefined ? { max_tokens: request.maxTokens } : {}),
      ...responseFormat(this.config.jsonMode, request.schemaName ?? 'reply', schema),
    };
    for (let attempt = 1; ; attempt++) {
      try {
        const completion = await this.client.chat.completions.create(body);
        if (!completion || typeof completion !== 'object' || !Array.isArray(completion.choices)) {
          throw new LlmRequestError(
            `${this.config.baseUrl} answered with something that is not a chat completion`,
            attempt,
          );
        }
        return { completion, attempts: attempt };
      } catch (error) {
        const failure = this.classify(error, attempt);
        if (!failure.retry || attempt > this.config.maxRetries) throw failure.error;
        await this.sleep(this.backoff(attempt, failure.retryAfterMs));
      }
    }
  }

  /** Decides whether a failed attempt is worth another, and what to report when it is not. */
  private classify(error: unknown, attempt: number): { retry: boolean; retryAfterMs?: number; error: Error } {
    const endpoint = this.config.baseUrl;
    if (error instanceof LlmRequestError) return { retry: false, error };
    if (error instanceof OpenAI.APIConnectionTimeoutError) {
      return {
        retry: true,
        error: new LlmRequestError(
          `${endpoint} did not answer within ${this.config.timeoutMs} ms (${attempt} attempts)`,
          attempt,
          undefined,
          {
            cause: error,
          },
        ),
      };
    }
    if (error instanceof OpenAI.APIConnectionError) {
      return {
        retry: true,
        error: new LlmRequestError(
          `Cannot reach ${endpoint} (${attempt} attempts): ${error.message}. Check ${LLM_ENVIRONMENT.baseUrl}.`,
          attempt,
          undefined,
          { cause: error },
        ),
      };
    }
    if (error instanceof OpenAI.APIError) {
      const status = error.status;
      if (status === 401 || status === 403) {
        return {
          retry: false,
          error: new UserError(
            `${endpoint} refused the request (${status}): ${error.message}. Check ${LLM_ENVIRONMENT.apiKey}.`,
            { cause: error },
          ),
        };
      }
      if (status === 404) {
        return {
          retry: false,
          error: new UserError(
            `${endpoint} does not know this path or model "${this.config.model}" (404): ${error.message}. Check ${LLM_ENVIRONMENT.baseUrl} (usually ends in /v1) and ${LLM_ENVIRONMENT.model}.`,
            { cause: error },
          ),
        };
      }
      const transient = status === undefined || status === 408 || status === 409 || status === 429 || status >= 500;
      return {
        retry: transient,
        retryAfterMs: readRetryAfter(error.headers),
        error: new LlmRequestError(
          `${endpoint} answered ${status ?? 'an error'}${transient ? ` after ${attempt} attempts` : ''}: ${error.message}`,
          attempt,
          status,
          { cause: error },
        ),
      };
    }
    // A body that is no completion (garbage, cut short) is as transient as a server error: worth another attempt.
    const message = error instanceof Error ? error.message : String(error);
    return {
      retry: true,
      error: new LlmRequestError(
        `${endpoint} sent an unreadable reply (${attempt} attempts): ${message.split('\n')[0]}`,
        attempt,
        undefined,
        {
          cause: error,
        },
      ),
    };
  }

  private backoff(attempt: number, retryAfterMs: number | undefined): number {
    if (retryAfterMs !== undefined) return Math.min(retryAfterMs, 60_000);
    const ceiling = Math.min(this.config.maxBackoffMs, this.config.initialBackoffMs * 2 ** (attempt - 1));
    return ceiling * (0.5 + Math.random() * 0.5);
  }
}

function responseFormat<T>(
  mode: JsonMode,
  name: string,
  schema: z.ZodType<T>,
): Pick<OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming, 'response_format'> {
  if (mode === 'none') return {};
  if (mode === 'json_object') return { response_format: { type: 'json_object' } };
  return {
    response_format: {
      type: 'json_schema',
      json_schema: {
        name,
        schema: z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>,
      },
    },
  };
}

/**
 * Parses a model's text as JSON of the expected shape. Tolerates what models commonly wrap JSON in (a Markdown code
 * fence, text around one object); everything else is rejected with a reason that names the problem.
 */
export function parseJsonReply<T>(
  content: string,
  schema: z.ZodType<T>,
): { ok: true; value: T } | { ok: false; reason: string } {
  const text = extractJsonText(content);
  if (text === undefined) {
    return { ok: false, reason: content.trim() === '' ? 'the reply is empty' : 'the reply holds no JSON object' };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, reason: `the reply is not valid JSON (${(error as Error).message})` };
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success)
    return { ok: false, reason: `the reply does not have the expected shape: ${describeSchemaError(parsed.error)}` };
  return { ok: true, value: parsed.data };
}

function extractJsonText(content: string): string | undefined {
  const trimmed = content.trim();
  if (trimmed.startsWith('{')) return trimmed;
  const fenced = /```(?:json)?\s*\n?([\s\S]*?)```/i.exec(trimmed);
  if (fenced?.[1]?.trim().startsWith('{')) return fenced[1].trim();
  const start = trimmed.indexOf('{');
  const end = trimmed.lastIndexOf('}');
  return start >= 0 && end > start ? trimmed.slice(start, end + 1) : undefined;
}

function readRetryAfter(headers: Headers | undefined): number | undefined {
  const milliseconds = Number(headers?.get('retry-after-ms') ?? Number.NaN);
  if (Number.isFinite(milliseconds) && milliseconds >= 0) return milliseconds;
  const text = headers?.get('retry-after');
  if (!text) return undefined;
  const seconds = Number(text);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function defaultSleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

/** Caps how many tasks run at once; the others wait in order. */
class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly capacity: number) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    // A finished task hands its slot straight to the next waiter, so no newcomer can slip in between.
    if (this.active < this.capacity) this.active += 1;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active -= 1;
    }
  }
}
