import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small OpenAI-compatible HTTP server for tests: the one test double for models. It answers
 * `POST /v1/chat/completions` from a script (a queue of replies, or a function of the request), `POST /v1/embeddings`
 * with deterministic vectors (or a script), and `GET /v1/models`. Every request is recorded, so a test can count what
 * was paid for. Replies can be malformed, errors (429, 500, …) or slow, to exercise retries and timeouts.
 */

/** One scripted HTTP reply. `body` is sent as JSON; `rawBody` as is (for malformed replies). */
export interface ScriptedReply {
  status?: number;
  headers?: Record<string, string>;
  body?: unknown;
  rawBody?: string;
  /** Waits this long before answering (to trigger client timeouts). */
  delayMs?: number;
}

/** A request as the server received it. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

/** The fields of a chat completion request that tests look at; the rest is kept in `body`. */
export interface ChatRequest {
  model: string;
  messages: { role: string; content?: unknown; tool_calls?: unknown; tool_call_id?: string }[];
  tools?: unknown[];
  response_format?: { type: string; json_schema?: unknown };
  [field: string]: unknown;
}

export interface EmbeddingsRequest {
  model: string;
  input: string | string[];
  encoding_format?: 'float' | 'base64';
  [field: string]: unknown;
}

export type ChatScript = (request: ChatRequest, index: number) => ScriptedReply | Promise<ScriptedReply>;
export type EmbeddingsScript = (request: EmbeddingsRequest, index: number) => ScriptedReply | Promise<ScriptedReply>;

export interface OpenAiServerOptions {
  /** Replies to chat requests in order; when they run out, `chat` answers (or a 500 saying the script ran out). */
  replies?: readonly ScriptedReply[];
  /** Answers chat requests once `replies` is used up. */
  chat?: ChatScript;
  /** Answers embedding requests; by default each input gets a deterministic unit vector of `dimensions`. */
  embeddings?: EmbeddingsScript;
  /** Dimensions of the default embedding vectors (8). */
  dimensions?: number;
  /** The model id the default replies name, and `GET /v1/models` lists. */
  modelId?: string;
}

export interface OpenAiTestServer {
  /** Base URL for an OpenAI client, ending in `/v1`. */
  baseUrl: string;
  /** Every request received, in order. */
  requests: RecordedRequest[];
  /** The chat completion requests received, in order. */
  chatRequests(): ChatRequest[];
  /** Appends replies to the chat queue. */
  enqueue(...replies: ScriptedReply[]): void;
  close(): Promise<void>;
}

let completionCounter = 0;

/** A chat completion whose assistant message has `content` (a string, or a value sent as its JSON text). */
export function chatReply(
  content: unknown,
  options: { finishReason?: string; model?: string; usage?: { prompt: number; completion: number } } = {},
): ScriptedReply {
  return {
    body: completionBody(
      { role: 'assistant', content: typeof content === 'string' ? content : JSON.stringify(content) },
      options.finishReason ?? 'stop',
      options.model,
      options.usage,
    ),
  };
}

/** A chat completion that calls tools: `arguments` are sent as JSON text, as the API does (or as given when a string). */
export function toolCallReply(
  calls: readonly { name: string; arguments: unknown; id?: string }[],
  options: { content?: string; model?: string } = {},
): ScriptedReply {
  return {
    body: completionBody(
      {
        role: 'assistant',
        content: options.content ?? null,
        tool_calls: calls.map((call, index) => ({
          id: call.id ?? `call_${index + 1}`,
          type: 'function',
          function: {
            name: call.name,
            arguments: typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments),
          },
        })),
      },
      'tool_calls',
      options.model,
    ),
  };
}

/** An API error in OpenAI's shape, e.g. `errorReply(429, 'slow down', { 'retry-after-ms': '10' })`. */
export function errorReply(
  status: number,
  message = `error ${status}`,
  headers: Record<string, string> = {},
): ScriptedReply {
  return { status, headers, body: { error: { message, type: status === 429 ? 'rate_limit_error' : 'server_error' } } };
}

/** A 200 reply whose body is not JSON at all. */
export function malformedReply(text = '{"choices": [ this is not json'): ScriptedReply {
  return { rawBody: text, headers: { 'content-type': 'application/json' } };
}

function completionBody(
  message: Record<string, unknown>,
  finishReason: string,
  model = 'scripted-model',
  usage = { prompt: 10, completion: 5 },
) {
  completionCounter += 1;
  return {
    id: `chatcmpl-test-${completionCounter}`,
    object: 'chat.completion',
    created: 1_767_225_600,
    model,
    choices: [{ index: 0, message, finish_reason: finishReason, logprobs: null }],
    usage: {
      prompt_tokens: usage.prompt,
      completion_tokens: usage.completion,
      total_tokens: usage.prompt + usage.completion,
    },
  };
}

/** A deterministic unit vector for a text: the same text always gets the same vector. */
export function deterministicVector(text: string, dimensions: number): number[] {
  const values: number[] = [];
  let block = 0;
  while (values.length < dimensions) {
    const digest = createHash('sha256').update(`${block}:${text}`).digest();
    for (let offset = 0; offset + 4 <= digest.length && values.length < dimensions; offset += 4) {
      values.push(digest.readInt32LE(offset) / 2 ** 31);
    }
    block += 1;
  }
  const norm = Math.sqrt(values.reduce((sum, value) => sum + value * value, 0)) || 1;
  return values.map((value) => value / norm);
}

/** Starts the server on a free port of 127.0.0.1. Close it in `afterAll`/`afterEach`. */
export async function startOpenAiServer(options: OpenAiServerOptions = {}): Promise<OpenAiTestServer> {
  const queue: ScriptedReply[] = [...(options.replies ?? [])];
  const requests: RecordedRequest[] = [];
  const dimensions = options.dimensions ?? 8;
  const modelId = options.modelId ?? 'scripted-model';
  let chatIndex = 0;
  let embeddingsIndex = 0;

  async function answer(request: IncomingMessage): Promise<ScriptedReply> {
    const text = await readBody(request);
    let body: unknown = text;
    if (text !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        return errorReply(400, 'request body is not JSON');
      }
    }
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    requests.push({ method: request.method ?? 'GET', path, headers: request.headers, body });
    if (request.method === 'GET' && path === '/v1/models') {
      return { body: { object: 'list', data: [{ id: modelId, object: 'model', created: 0, owned_by: 'tests' }] } };
    }
    if (request.method === 'POST' && path === '/v1/chat/completions') {
      const chat = body as ChatRequest;
      if (chat.stream === true) return errorReply(400, 'the test server does not stream');
      const index = chatIndex++;
      const next = queue.shift();
      if (next) return next;
      if (options.chat) return options.chat(chat, index);
      return errorReply(500, `no scripted reply left for chat request ${index + 1}`);
    }
    if (request.method === 'POST' && path === '/v1/embeddings') {
      const embeddings = body as EmbeddingsRequest;
      const index = embeddingsIndex++;
      if (options.embeddings) return options.embeddings(embeddings, index);
      const inputs = Array.isArray(embeddings.input) ? embeddings.input : [embeddings.input];
      return {
        body: {
          object: 'list',
          model: embeddings.model,
          data: inputs.map((input, position) => {
            const vector = deterministicVector(String(input), dimensions);
            return {
              object: 'embedding',
              index: position,
              // The SDK asks for base64 (little-endian float32) unless told otherwise, and decodes it.
              embedding:
                embeddings.encoding_format === 'base64'
                  ? Buffer.from(new Float32Array(vector).buffer).toString('base64')
                  : vector,
            };
          }),
          usage: { prompt_tokens: inputs.length, total_tokens: inputs.length },
        },
      };
    }
    return errorReply(404, `no route ${request.method} ${path}`);
  }

  async function respond(request: IncomingMessage, response: ServerResponse): Promise<void> {
    let reply: ScriptedReply;
    try {
      reply = await answer(request);
    } catch (error) {
      reply = errorReply(500, `test server script failed: ${(error as Error).message}`);
    }
    if (reply.delayMs) await new Promise((resolve) => setTimeout(resolve, reply.delayMs));
    if (response.destroyed) return;
    const payload = reply.rawBody ?? JSON.stringify(reply.body ?? {});
    response.writeHead(reply.status ?? 200, { 'content-type': 'application/json', ...reply.headers });
    response.end(payload);
  }

  const server: Server = createServer((request, response) => {
    void respond(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    chatRequests: () =>
      requests
        .filter((request) => request.path === '/v1/chat/completions')
        .map((request) => request.body as ChatRequest),
    enqueue: (...replies) => queue.push(...replies),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (text += chunk));
    request.on('end', () => resolve(text));
    request.on('error', reject);
  });
}
