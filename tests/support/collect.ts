import { TraceEvent } from '../../core/index.js';
import type { Adapter, ParseItem, ParseOptions } from '../../ingest/adapter.js';

/** Runs an adapter over one unit and splits its output into schema-valid events, invalid events and rejects. */
export async function collect(adapter: Adapter, path: string, isDirectory: boolean, options: ParseOptions = {}) {
  const items: ParseItem[] = [];
  for await (const output of adapter.parse({ path, isDirectory }, options)) {
    if (Array.isArray(output)) items.push(...output);
    else items.push(output as ParseItem);
  }
  const events: TraceEvent[] = [];
  const invalid: { event: unknown; reason: string }[] = [];
  const rejects = [];
  for (const item of items) {
    if (item.kind === 'reject') {
      rejects.push(item.reject);
      continue;
    }
    const parsed = TraceEvent.safeParse(item.event);
    if (parsed.success) events.push(parsed.data);
    else invalid.push({ event: item.event, reason: parsed.error.message });
  }
  return { events, invalid, rejects };
}
