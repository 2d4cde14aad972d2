export { createEmbedder, EMBEDDER_CHOICES } from './create-embedder.js';
export { type Embedder, normalizeVector } from './embedder.js';
export { type CachedEmbeddings, contentHash, type EmbeddingProgress, embedWithCache } from './embedding-cache.js';
export { OpenAiEmbedder, type OpenAiEmbedderOptions, openAiEmbedderFromEnvironment } from './openai.js';
export { TransformersEmbedder } from './transformers.js';
export { UseLiteEmbedder } from './use-lite.js';
