import { createHash } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listValue } from '@duckdb/node-api';
import { createStagingFolder, type Database } from '../../core/index.js';
import type { Embedder } from './embedder.js';

/** Texts sent to the embedder between two cache writes and progress reports. */
const DEFAULT_BATCH_SIZE = 256;
/** Hashes looked up per query. */
const LOOKUP_CHUNK = 20_000;

const FIND_CACHED = `
SELECT content_hash, vector FROM embedding_cache
WHERE embedder = $1 AND content_hash IN (SELECT unnest($2))`;

const STORE_VECTORS = `
INSERT INTO embedding_cache
SELECT embedder, content_hash, dimensions, vector, now()
FROM read_json($1, format = 'newline_delimited',
               columns = {embedder: 'VARCHAR', content_hash: 'VARCHAR', dimensions: 'INTEGER', vector: 'FLOAT[]'})
ON CONFLICT DO NOTHING`;

export interface EmbeddingProgress {
  /** Distinct texts with a vector so far (cached or embedded). */
  done: number;
  /** Distinct texts in all. */
  total: number;
  /** Of `done`, those found in the cache. */
  cached: number;
}

export interface CachedEmbeddings {
  /** One vector per input text, in order (equal texts share one vector). */
  vectors: Float32Array[];
  /** Distinct texts the embedder was asked for: 0 when everything was cached. */
  embedded: number;
  /** Distinct texts found in the cache. */
  cached: number;
  /** Distinct texts. */
  distinct: number;
}

/** The cache key of a text: SHA-256 of its UTF-8 bytes, hex. */
export function contentHash(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * Embeds texts through the `embedding_cache` table: a vector is computed once per embedder and text, so mining the
 * same failures again embeds nothing. New vectors are stored after every batch, so an interrupted run keeps what it
 * paid for. Stored vectors come back bit for bit (FLOAT round-trips through JSON), so cached and fresh runs cluster
 * alike.
 */
export async function embedWithCache(
  database: Database,
  embedder: Embedder,
  texts: readonly string[],
  options: { batchSize?: number; onProgress?: (progress: EmbeddingProgress) => void } = {},
): Promise<CachedEmbeddings> {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const hashes = texts.map(contentHash);
  const textByHash = new Map<string, string>();
  hashes.forEach((hash, index) => {
    textByHash.set(hash, texts[index] ?? '');
  });
  const distinct = [...textByHash.keys()];

  const vectorByHash = new Map<string, Float32Array>();
  for (let start = 0; start < distinct.length; start += LOOKUP_CHUNK) {
    const chunk = distinct.slice(start, start + LOOKUP_CHUNK);
    const rows = await database.all<{ content_hash: string; vector: number[] }>(FIND_CACHED, [
      embedder.name,
      listValue(chunk),
    ]);
    for (const row of rows) vectorByHash.set(row.content_hash, Float32Array.from(row.vector));
  }
  const cached = vectorByHash.size;
  const missing = distinct.filter((hash) => !vectorByHash.has(hash));
  options.onProgress?.({ done: cached, total: distinct.length, cached });

  if (missing.length > 0) {
    const folder = createStagingFolder('embeddings-');
    try {
      for (let start = 0; start < missing.length; start += batchSize) {
        const batch = missing.slice(start, start + batchSize);
        const vectors = await embedder.embed(batch.map((hash) => textByHash.get(hash) ?? ''));
        const file = join(folder, `batch-${start}.ndjson`);
        writeFileSync(
          file,
          batch
            .map((hash, index) => {
              const vector = vectors[index] ?? new Float32Array();
              vectorByHash.set(hash, vector);
              return JSON.stringify({
                embedder: embedder.name,
                content_hash: hash,
                dimensions: vector.length,
                vector: Array.from(vector),
              });
            })
            .join('\n'),
        );
        await database.run(STORE_VECTORS, [file]);
        rmSync(file);
        options.onProgress?.({ done: cached + start + batch.length, total: distinct.length, cached });
      }
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  }

  return {
    vectors: hashes.map((hash) => vectorByHash.get(hash) ?? new Float32Array()),
    embedded: missing.length,
    cached,
    distinct: distinct.length,
  };
}
