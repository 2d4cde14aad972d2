import { UserError } from '../../core/index.js';
import type { Embedder } from './embedder.js';
import { openAiEmbedderFromEnvironment } from './openai.js';
import { TransformersEmbedder } from './transformers.js';
import { UseLiteEmbedder } from './use-lite.js';

/** The `--embedder` values, for help texts and error messages. */
export const EMBEDDER_CHOICES = [
  'use (Universal Sentence Encoder lite, bundled, the default)',
  'transformers:PATH or transformers:HUB_ID (a transformers.js sentence-embedding model)',
  'openai:MODEL (an OpenAI-compatible endpoint from SELFHARNESS_EMBED_BASE_URL or SELFHARNESS_LLM_BASE_URL)',
] as const;

/**
 * Turns an `--embedder` value into an embedder. Models load lazily, so this only checks what can be checked without
 * loading: the folder exists, the endpoint is configured.
 */
export function createEmbedder(
  specification: string | undefined,
  environment: NodeJS.ProcessEnv = process.env,
): Embedder {
  const value = (specification ?? 'use').trim();
  if (value === 'use' || value === 'use-lite') return new UseLiteEmbedder();
  const separator = value.indexOf(':');
  const kind = separator === -1 ? value : value.slice(0, separator);
  const argument = separator === -1 ? '' : value.slice(separator + 1).trim();
  if ((kind === 'transformers' || kind === 'openai') && argument === '') {
    throw new UserError(
      `--embedder ${value} names no model: write ${kind === 'transformers' ? 'transformers:PATH' : 'openai:MODEL'}.`,
    );
  }
  if (kind === 'transformers') return new TransformersEmbedder(argument);
  if (kind === 'openai') return openAiEmbedderFromEnvironment(argument, environment);
  throw new UserError(`Unknown embedder "${value}". Valid embedders:\n  ${EMBEDDER_CHOICES.join('\n  ')}`);
}
