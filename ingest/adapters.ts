import type { Adapter } from './adapter.js';
import { nativeAdapter } from './native.js';

/**
 * Every known format, in detection order: a directory or file goes to the first adapter that claims it.
 * Directory formats come first, since a claimed directory is read as a whole.
 */
export const adapters: readonly Adapter[] = [nativeAdapter];

export function findAdapter(format: string): Adapter | undefined {
  return adapters.find((adapter) => adapter.format === format);
}
