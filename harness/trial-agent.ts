import type { ModelFactory, TrialAgent } from './contracts.js';
import { createMiddleware } from './middleware/index.js';
import { runHarness } from './runtime/loop.js';
import type { HarnessVersion } from './versions.js';

/**
 * A model inside a harness version, as an agent the task runner can use: each trial gets a fresh model from the
 * factory (a simulated model needs the task and seed) and fresh middleware (they keep per-run counts).
 */
export function createHarnessAgent(options: {
  readonly model: string;
  readonly factory: ModelFactory;
  readonly version: HarnessVersion;
  readonly now?: () => number;
}): TrialAgent {
  const { version } = options;
  return {
    model: options.model,
    harnessVersion: version.versionId,
    solve: (context) =>
      runHarness({
        model: options.factory({ task: context.task, seed: context.seed }),
        modelName: options.model,
        spec: version.spec,
        middleware: createMiddleware(version.spec),
        context,
        ...(options.now ? { now: options.now } : {}),
      }),
  };
}
