import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * The real public traces live outside the repository (`../shared/traces`, or `SELFHARNESS_SHARED_TRACES`).
 * Tests over them skip with this message where the folder is absent.
 */
export const sharedTracesDir = resolve(
  process.env.SELFHARNESS_SHARED_TRACES ?? join(import.meta.dirname, '../../../shared/traces'),
);
export const hasSharedTraces = existsSync(sharedTracesDir);
export const sharedTracesSkipReason = `real traces not found at ${sharedTracesDir} (set SELFHARNESS_SHARED_TRACES to run these tests)`;

if (!hasSharedTraces && process.env.VITEST_WORKER_ID !== undefined) {
  console.warn(`skipping real-trace tests: ${sharedTracesSkipReason}`);
}
