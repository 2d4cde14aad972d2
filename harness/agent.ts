import { type EventLog, UserError } from '../core/index.js';
import type { ModelFactory, TrialAgent } from './contracts.js';
import { createOpenAiModel, type OpenAiEnvironment, openAiOptionsFromEnvironment } from './models/openai.js';
import { createHarnessAgent } from './trial-agent.js';
import { resolveVersion } from './versions.js';

export interface CreateAgentOptions {
  /** `sim:PROFILE` or `openai:MODEL`. (The oracle belongs to the task suite.) */
  readonly model: string;
  /** A harness version id (or unique prefix); default: the built-in default harness. */
  readonly harness?: string;
  readonly log: EventLog;
  /** Where `openai:MODEL` reads its endpoint, key, timeout and retries; default: `process.env`. */
  readonly environment?: OpenAiEnvironment;
}

/**
 * The harness runtime around a model, as an agent the task runner can use. Resolves the model name and the harness
 * version (registering the built-in default harness on first use) before any trial starts, so a wrong name fails
 * at once with the forms that are valid.
 */
export async function createAgent(options: CreateAgentOptions): Promise<TrialAgent> {
  const factory = await resolveModelFactory(options.model, options.environment ?? process.env);
  const version = await resolveVersion(options.log, options.harness ?? 'default');
  return createHarnessAgent({ model: options.model, factory, version });
}

/**
 * Builds the model factory for `openai:MODEL` or `sim:PROFILE`. The simulated model is loaded only when asked for,
 * so commands that never run it do not load it.
 */
export async function resolveModelFactory(model: string, environment: OpenAiEnvironment): Promise<ModelFactory> {
  const separator = model.indexOf(':');
  const kind = separator > 0 ? model.slice(0, separator) : '';
  const name = separator > 0 ? model.slice(separator + 1).trim() : '';
  if (kind === 'openai' && name !== '') {
    const chatModel = createOpenAiModel(openAiOptionsFromEnvironment(name, environment));
    return () => chatModel;
  }
  const { createSimModelFactory, simProfiles } = await import('./models/sim/index.js');
  if (kind === 'sim' && name !== '') {
    const profiles = Object.keys(simProfiles);
    if (!profiles.includes(name))
      throw new UserError(
        `Unknown simulated model profile ${name} in ${model}: the profiles are ${profiles.join(', ')}`,
      );
    return createSimModelFactory(name);
  }
  throw new UserError(
    `Unknown model ${JSON.stringify(model)}: use openai:MODEL (an OpenAI-compatible endpoint, see SELFHARNESS_LLM_BASE_URL) or sim:PROFILE (${Object.keys(simProfiles).join(', ')}); the task runner also knows oracle`,
  );
}
