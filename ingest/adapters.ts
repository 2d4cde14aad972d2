import type { Adapter } from './adapter.js';
import { atifAdapter } from './atif.js';
import { harborAdapter } from './harbor.js';
import { nativeAdapter } from './native.js';
import { otelAdapter } from './otel.js';
import { sweAgentAdapter } from './swe-agent.js';
import { sweBenchOutcomesAdapter } from './swe-bench-outcomes.js';
import { tb1Adapter } from './tb1.js';

/**
 * Every known format, in detection order: a directory or file goes to the first adapter that claims it.
 * Directory formats come first, since a claimed directory is read as a whole.
 */
export const adapters: readonly Adapter[] = [
  harborAdapter,
  tb1Adapter,
  atifAdapter,
  sweAgentAdapter,
  sweBenchOutcomesAdapter,
  otelAdapter,
  nativeAdapter,
];

export function findAdapter(format: string): Adapter | undefined {
  return adapters.find((adapter) => adapter.format === format);
}
