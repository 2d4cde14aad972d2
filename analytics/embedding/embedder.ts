/**
 * What clustering needs from an embedding model: a stable name (the cache key: two embedders with the same name must
 * give the same vector for the same text) and a batch `embed`. Each SDK lives behind this interface in one adapter
 * file, so mining, tests and benchmarks depend only on it.
 */
export interface Embedder {
  /** Identifies the model, e.g. `use-lite`, `transformers:/models/minilm`, `openai:text-embedding-3-small`. */
  readonly name: string;
  /** Length of every vector; `undefined` until the first batch where the model only says it by answering. */
  readonly dimensions: number | undefined;
  /** One vector per text, in order. Callers batch; an implementation may split a batch further. */
  embed(texts: readonly string[]): Promise<Float32Array[]>;
  /** Releases the model (sessions, sockets). Optional. */
  close?(): Promise<void>;
}

/** Scales a vector to unit length, so that cosine similarity is a dot product and k-means works on directions. */
export function normalizeVector(values: ArrayLike<number>): Float32Array {
  const vector = Float32Array.from(values);
  let sum = 0;
  for (const value of vector) sum += value * value;
  const length = Math.sqrt(sum);
  if (length > 0) for (let index = 0; index < vector.length; index++) vector[index] = (vector[index] ?? 0) / length;
  return vector;
}
