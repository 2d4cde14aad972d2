import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { FeatureExtractionPipeline } from '@huggingface/transformers';
import { SystemError, UserError } from '../../core/index.js';
import type { Embedder } from './embedder.js';

const BATCH_SIZE = 32;

/**
 * A sentence-embedding model run by transformers.js (ONNX Runtime), from a local folder in the Hugging Face layout
 * (`config.json`, `tokenizer.json`, `onnx/model.onnx`) or a hub id where the hub is reachable. Vectors are the mean
 * of the token vectors over the attention mask, scaled to unit length: the usual sentence-transformers recipe. The SDK
 * is loaded on the first `embed`, so other commands do not pay for it.
 */
export class TransformersEmbedder implements Embedder {
  readonly name: string;
  private model: string;
  private extractor: Promise<FeatureExtractionPipeline> | undefined;
  private knownDimensions: number | undefined;

  /** `model` is a folder path (absolute, relative, or starting with `.`/`/`) or a hub id such as `Xenova/all-MiniLM-L6-v2`. */
  constructor(model: string) {
    const isPath = model.startsWith('.') || model.startsWith('/') || existsSync(model);
    if (isPath) {
      const folder = resolve(model);
      if (!existsSync(folder) || !statSync(folder).isDirectory()) {
        throw new UserError(
          `No model folder at ${folder}: pass --embedder transformers:PATH with a folder holding config.json, tokenizer.json and onnx/model.onnx.`,
        );
      }
      for (const file of ['config.json', 'tokenizer.json', 'onnx/model.onnx']) {
        if (!existsSync(resolve(folder, file))) {
          throw new UserError(
            `Model folder ${folder} has no ${file}: a transformers.js model needs config.json, tokenizer.json and onnx/model.onnx.`,
          );
        }
      }
      this.model = folder;
    } else {
      this.model = model;
    }
    this.name = `transformers:${this.model}`;
  }

  get dimensions(): number | undefined {
    return this.knownDimensions;
  }

  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    if (texts.length === 0) return [];
    const extractor = await this.load();
    const vectors: Float32Array[] = [];
    for (let start = 0; start < texts.length; start += BATCH_SIZE) {
      const batch = texts.slice(start, start + BATCH_SIZE).map((text) => (text.trim() === '' ? '(empty)' : text));
      const output = await extractor(batch, { pooling: 'mean', normalize: true });
      const [rows, width] = output.dims as [number, number];
      const data = output.data as Float32Array;
      for (let row = 0; row < rows; row++)
        vectors.push(Float32Array.from(data.subarray(row * width, (row + 1) * width)));
      this.knownDimensions = width;
    }
    return vectors;
  }

  async close(): Promise<void> {
    const extractor = await this.extractor?.catch(() => undefined);
    await extractor?.dispose();
    this.extractor = undefined;
  }

  private load(): Promise<FeatureExtractionPipeline> {
    this.extractor ??= (async () => {
      const isFolder = this.model.startsWith('/');
      const { env, pipeline } = await import('@huggingface/transformers');
      if (isFolder) env.allowLocalModels = true;
      try {
        return await pipeline('feature-extraction', this.model, { dtype: 'fp32', local_files_only: isFolder });
      } catch (error) {
        this.extractor = undefined;
        const message = (error as Error).message.split('\n')[0];
        throw isFolder
          ? new UserError(`Cannot load the transformers.js model in ${this.model}: ${message}`, { cause: error })
          : new SystemError(
              `Cannot load the transformers.js model ${this.model} from the hub: ${message}. Without a network, download it elsewhere and pass --embedder transformers:/path/to/folder.`,
              { cause: error },
            );
      }
    })();
    return this.extractor;
  }
}
