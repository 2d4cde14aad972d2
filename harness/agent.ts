import { type EventLog, UserError } from '../core/index.js';
import type { TrialAgent } from './contracts.js';

export interface CreateAgentOptions {
  /** `sim:PROFILE` or `openai:MODEL`. (The oracle belongs to the task suite.) */
  readonly model: string;
  /** A harness version id (or unique prefix); default: the built-in default harness. */
  readonly harness?: string;
  readonly log: EventLog;
}

/** The harness runtime around a model, as an agent the task runner can use. */
export async function createAgent(options: CreateAgentOptions): Promise<TrialAgent> {
  throw new UserError(`Model ${options.model} cannot run yet: the harness runtime is not built.`);
}
