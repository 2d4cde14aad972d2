import OpenAI from 'openai';
import { SystemError, UserError } from '../../core/index.js';
import { type Embedder, normalizeVector } from './embedder.js';

/** Inputs per request: well under every provider's limit, and small enough for steady progress. */
const BATCH_SIZE = 64;

export interface OpenAiEmbedderOptions {
  model: string;
  baseUrl: string;
  apiKey?: string;
  /** Milliseconds per request before it is retried (default 60 s). */
  timeoutMs?: number;
  maxRetries?: number;
}

/**
 * Any OpenAI-compatible `/embeddings` endpoint (OpenAI, vLLM, Ollama, LiteLLM, text-embeddings-inference). The
 * endpoint comes from `SELFHARNESS_EMBED_BASE_URL`, else `SELFHARNESS_LLM_BASE_URL`; the key from
 * `SELFHARNESS_EMBED_API_KEY`, else `SELFHARNESS_LLM_API_KEY` (see `openAiEmbedderFromEnvironment`).
 */
export class OpenAiEmbedder implements Embedder {
  readonly name: string;
  private readonly client: OpenAI;
  private knownDimensions: number | undefined;

  constructor(private readonly options: OpenAiEmbedderOptions) {
    this.name = `openai:${options.model}`;
    this.client = new OpenAI({
      baseURL: options.baseUrl,
      apiKey: options.apiKey ?? 'none',
      timeout: options.timeoutMs ?? 60_000,
      maxRetries: options.maxRetries ?? 2,
    });
  }

  get dimensions(): number | undefined {
    return this.knownDimensions;
  }

  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    const vectors: Float32Array[] = [];
    for (let start = 0; start < texts.length; start += BATCH_SIZE) {
      const batch = texts.slice(start, start + BATCH_SIZE).map((text) => (text.trim() === '' ? '(empty)' : text));
      let response: OpenAI.Embeddings.CreateEmbeddingResponse;
      try {
        response = await this.client.embeddings.create({
          model: this.options.model,
          input: batch,
          encoding_format: 'float',
        });
      } catch (error) {
        throw new SystemError(
          `Embedding request to ${this.options.baseUrl} (model ${this.options.model}) failed: ${(error as Error).message}. Check the endpoint and SELFHARNESS_EMBED_BASE_URL / SELFHARNESS_EMBED_API_KEY.`,
          { cause: error },
        );
      }
      const data = Array.isArray(response?.data) ? response.data : [];
      if (data.length !== batch.length) {
        throw new SystemError(
          `Embedding endpoint ${this.options.baseUrl} returned ${data.length} vectors for ${batch.length} texts (model ${this.options.model}).`,
        );
      }
      const ordered = [...data].sort((left, right) => left.index - right.index);
      for (const item of ordered) {
        if (!Array.isArray(item.embedding) || item.embedding.length === 0) {
          throw new SystemError(
            `Embedding endpoint ${this.options.baseUrl} returned no vector for input ${item.index} (model ${this.options.model}).`,
          );
        }
        if (this.knownDimensions !== undefined && item.embedding.length !== this.knownDimensions) {
          throw new SystemError(
            `Embedding endpoint ${this.options.baseUrl} returned vectors of ${item.embedding.length} and ${this.knownDimensions} dimensions (model ${this.options.model}).`,
          );
        }
        this.knownDimensions = item.embedding.length;
        vectors.push(normalizeVector(item.embedding));
      }
    }
    return vectors;
  }
}

/** Builds the embedder for `openai:MODEL` from the environment, or says which variable to set. */
export function openAiEmbedderFromEnvironment(
  model: string,
  environment: NodeJS.ProcessEnv = process.env,
): OpenAiEmbedder {
  const baseUrl = environment.SELFHARNESS_EMBED_BASE_URL || environment.SELFHARNESS_LLM_BASE_URL;
  if (!baseUrl) {
    throw new UserError(
      `--embedder openai:${model} needs an endpoint: set SELFHARNESS_EMBED_BASE_URL (or SELFHARNESS_LLM_BASE_URL), e.g. http://localhost:8000/v1.`,
    );
  }
  return new OpenAiEmbedder({
    model,
    baseUrl,
    apiKey: environment.SELFHARNESS_EMBED_API_KEY || environment.SELFHARNESS_LLM_API_KEY,
  });
}
