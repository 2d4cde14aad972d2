import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createEmbedder,
  embedWithCache,
  OpenAiEmbedder,
  TransformersEmbedder,
  UseLiteEmbedder,
} from '../../analytics/embedding/index.js';
import { installAnalytics } from '../../analytics/schema.js';
import { EventLog, SystemError, UserError } from '../../core/index.js';
import { CountingEmbedder, TINY_MODEL_DIMENSIONS, writeTinyEmbeddingModel } from '../support/tiny-embedding-model.js';

function cosine(left: Float32Array, right: Float32Array): number {
  let dot = 0;
  for (let index = 0; index < left.length; index++) dot += (left[index] ?? 0) * (right[index] ?? 0);
  return dot;
}

function length(vector: Float32Array): number {
  return Math.sqrt(cosine(vector, vector));
}

const folder = mkdtempSync(join(tmpdir(), 'selfharness-embedding-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

describe('transformers.js embedder on a generated tiny model', () => {
  const modelFolder = writeTinyEmbeddingModel(join(folder, 'tiny-model'));

  it('loads config.json, tokenizer.json and onnx/model.onnx from a folder and gives unit vectors', async () => {
    const embedder = new TransformersEmbedder(modelFolder);
    expect(embedder.name).toBe(`transformers:${modelFolder}`);
    const [make, makeAgain, module] = await embedder.embed([
      'repeated failed command make test',
      'test make command failed repeated',
      'module not found pip install',
    ]);
    expect(embedder.dimensions).toBe(TINY_MODEL_DIMENSIONS);
    expect(make).toHaveLength(TINY_MODEL_DIMENSIONS);
    expect(length(make!)).toBeCloseTo(1, 5);
    // Mean pooling: the same words in another order give the same vector; other words give another one.
    expect(cosine(make!, makeAgain!)).toBeCloseTo(1, 5);
    expect(cosine(make!, module!)).toBeLessThan(0.9);
    await embedder.close();
  });

  it('batches long inputs and keeps their order', async () => {
    const embedder = new TransformersEmbedder(modelFolder);
    const texts = Array.from({ length: 70 }, (_, index) => (index % 2 === 0 ? 'make test' : 'pip install module'));
    const vectors = await embedder.embed(texts);
    expect(vectors).toHaveLength(70);
    expect(cosine(vectors[0]!, vectors[68]!)).toBeCloseTo(1, 5);
    expect(cosine(vectors[1]!, vectors[69]!)).toBeCloseTo(1, 5);
    expect(cosine(vectors[0]!, vectors[1]!)).toBeLessThan(0.9);
    await embedder.close();
  });

  it('says what is missing from a model folder', () => {
    expect(() => new TransformersEmbedder(join(folder, 'nowhere'))).toThrow(/No model folder at .*nowhere/);
    const incomplete = join(folder, 'incomplete');
    mkdirSync(incomplete);
    expect(() => new TransformersEmbedder(incomplete)).toThrow(UserError);
    expect(() => new TransformersEmbedder(incomplete)).toThrow(/has no config\.json/);
  });
});

describe('OpenAI-compatible embeddings endpoint', () => {
  let server: Server;
  let baseUrl: string;
  const requests: { model: string; input: string[] }[] = [];
  let failNext = false;

  beforeAll(async () => {
    server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk) => (body += chunk));
      request.on('end', () => {
        if (request.url !== '/v1/embeddings') {
          response.writeHead(404).end();
          return;
        }
        if (failNext) {
          response.writeHead(500, { 'content-type': 'application/json' });
          response.end(JSON.stringify({ error: { message: 'model overloaded' } }));
          return;
        }
        const parsed = JSON.parse(body) as { model: string; input: string[] };
        requests.push(parsed);
        // Vector of a text: [length, vowel count, 2] — answered in reverse order to check re-ordering by index.
        const data = parsed.input
          .map((text, index) => ({
            object: 'embedding',
            index,
            embedding: [text.length, (text.match(/[aeiou]/g) ?? []).length, 2],
          }))
          .reverse();
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(
          JSON.stringify({ object: 'list', data, model: parsed.model, usage: { prompt_tokens: 1, total_tokens: 1 } }),
        );
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });

  afterAll(() => server.close());

  it('sends batches of texts to /embeddings and returns unit vectors in input order', async () => {
    requests.length = 0;
    const embedder = createEmbedder('openai:test-embed', { SELFHARNESS_EMBED_BASE_URL: baseUrl });
    expect(embedder.name).toBe('openai:test-embed');
    const texts = Array.from({ length: 100 }, (_, index) => 'x'.repeat(index + 1));
    const vectors = await embedder.embed(texts);
    expect(requests.map((request) => request.input.length)).toEqual([64, 36]);
    expect(requests[0]?.model).toBe('test-embed');
    expect(embedder.dimensions).toBe(3);
    expect(vectors).toHaveLength(100);
    expect(length(vectors[5]!)).toBeCloseTo(1, 5);
    // text 5 is 'xxxxxx': [6, 0, 2] normalised.
    expect(Array.from(vectors[5]!)).toEqual([6 / Math.sqrt(40), 0, 2 / Math.sqrt(40)].map(Math.fround));
  });

  it('falls back to SELFHARNESS_LLM_BASE_URL, and says which variable to set when neither is', () => {
    expect(createEmbedder('openai:m', { SELFHARNESS_LLM_BASE_URL: baseUrl }).name).toBe('openai:m');
    expect(() => createEmbedder('openai:m', {})).toThrow(/set SELFHARNESS_EMBED_BASE_URL/);
  });

  it('reports a failing endpoint with its address and model', async () => {
    failNext = true;
    const embedder = new OpenAiEmbedder({ model: 'test-embed', baseUrl, maxRetries: 0 });
    await expect(embedder.embed(['a'])).rejects.toThrow(SystemError);
    await expect(embedder.embed(['a'])).rejects.toThrow(`Embedding request to ${baseUrl} (model test-embed) failed`);
    failNext = false;
  });
});

describe('createEmbedder', () => {
  it('defaults to the Universal Sentence Encoder lite', () => {
    expect(createEmbedder(undefined).name).toBe('use-lite');
    expect(createEmbedder('use').name).toBe('use-lite');
  });

  it('lists the valid embedders for an unknown one', () => {
    expect(() => createEmbedder('word2vec')).toThrow(UserError);
    expect(() => createEmbedder('word2vec')).toThrow(
      /Unknown embedder "word2vec"\. Valid embedders:[\s\S]*use[\s\S]*transformers:PATH[\s\S]*openai:MODEL/,
    );
    expect(() => createEmbedder('transformers:')).toThrow(/names no model/);
  });
});

describe('embedding cache', () => {
  it('embeds each distinct text once, and nothing on a second run; cached vectors equal fresh ones', async () => {
    const log = await EventLog.open(join(folder, 'cache.duckdb'));
    try {
      await installAnalytics(log.database);
      const embedder = new CountingEmbedder(
        new TransformersEmbedder(writeTinyEmbeddingModel(join(folder, 'cache-model'))),
      );
      const texts = ['make test failed', 'pip install module', 'make test failed', 'lost environment state'];
      const progress: number[] = [];
      const first = await embedWithCache(log.database, embedder, texts, {
        batchSize: 2,
        onProgress: (state) => progress.push(state.done),
      });
      expect(first).toMatchObject({ embedded: 3, cached: 0, distinct: 3 });
      expect(embedder.requests).toEqual([['make test failed', 'pip install module'], ['lost environment state']]);
      expect(progress).toEqual([0, 2, 3]);
      expect(first.vectors[0]).toEqual(first.vectors[2]);

      const second = await embedWithCache(log.database, embedder, [...texts, 'pip install module']);
      expect(second).toMatchObject({ embedded: 0, cached: 3, distinct: 3 });
      expect(embedder.embeddedTexts).toBe(3);
      expect(second.vectors.slice(0, 4)).toEqual(first.vectors);

      const rows = await log.query<{ n: bigint; dimensions: number }>(
        'SELECT count(*) AS n, min(dimensions) AS dimensions FROM embedding_cache WHERE embedder = $1',
        [embedder.name],
      );
      expect(rows[0]).toEqual({ n: 3n, dimensions: TINY_MODEL_DIMENSIONS });
      await embedder.close();
    } finally {
      log.close();
    }
  });
});

describe('Universal Sentence Encoder lite (bundled weights)', () => {
  it('embeds offline into 512 unit-length dimensions, related failures closer than unrelated ones', async () => {
    const embedder = new UseLiteEmbedder();
    const [compile, compileAgain, artifact] = await embedder.embed([
      'javac: command not found while compiling the project',
      'the java compiler is not installed, so the build fails',
      'the verifier could not find the required output file result.txt',
    ]);
    expect(compile).toHaveLength(512);
    expect(length(compile!)).toBeCloseTo(1, 4);
    expect(cosine(compile!, compileAgain!)).toBeGreaterThan(cosine(compile!, artifact!));
  });
});
