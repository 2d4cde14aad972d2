import { type Adapter, type ParseItem, rejectItem } from './adapter.js';
import { atifAdapter } from './atif.js';
import { harborAdapter } from './harbor.js';
import { nativeAdapter } from './native.js';
import { otelAdapter } from './otel.js';
import { sweAgentAdapter } from './swe-agent.js';
import { sweBenchOutcomesAdapter } from './swe-bench-outcomes.js';
import { tb1Adapter } from './tb1.js';

/**
 * Events nested deeper than this are refused. Source formats carry free-form values (tool arguments, `extra`,
 * metadata) into events, and a value nested thousands of levels deep (a damaged or hostile file) cannot be serialised
 * or stored: it would stop the whole import. Real traces stay far below this.
 */
export const MAX_EVENT_DEPTH = 256;

/**
 * Every known format, in detection order: a directory or file goes to the first adapter that claims it.
 * Directory formats come first, since a claimed directory is read as a whole.
 */
export const adapters: readonly Adapter[] = [
  limitNesting(harborAdapter),
  limitNesting(tb1Adapter),
  limitNesting(atifAdapter),
  limitNesting(sweAgentAdapter),
  limitNesting(sweBenchOutcomesAdapter),
  limitNesting(otelAdapter),
  // Native events arrive as their own JSON text, which is stored as read; the orchestrator never re-serialises them.
  nativeAdapter,
];

export function findAdapter(format: string): Adapter | undefined {
  return adapters.find((adapter) => adapter.format === format);
}

/** The adapter, with every event nested deeper than `MAX_EVENT_DEPTH` turned into a reject at the event's source. */
function limitNesting(adapter: Adapter): Adapter {
  return {
    ...adapter,
    async *parse(unit, options) {
      for await (const output of adapter.parse(unit, options)) {
        if (!Array.isArray(output)) yield checkNesting(adapter.format, unit.path, output as ParseItem);
        else yield (output as readonly ParseItem[]).map((item) => checkNesting(adapter.format, unit.path, item));
      }
    },
  };
}

function checkNesting(format: string, unitPath: string, item: ParseItem): ParseItem {
  if (item.kind !== 'event' || !isDeeperThan(item.event, MAX_EVENT_DEPTH)) return item;
  const event = item.event as { id?: unknown; source?: { file?: string; position?: string } } | null;
  const reason = `a value in this record is nested deeper than ${MAX_EVENT_DEPTH} levels, which cannot be stored; flatten it or leave it out`;
  const raw = typeof event?.id === 'string' ? `(event ${event.id}; value not shown)` : '(value not shown)';
  return rejectItem(
    format,
    event?.source?.file ?? unitPath,
    event?.source?.position ?? item.position ?? '(record)',
    reason,
    raw,
  );
}

/** Whether a JSON-like value has more than `limit` levels of arrays and objects; walks without recursion. */
export function isDeeperThan(value: unknown, limit: number): boolean {
  const stack: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const { value: current, depth } = stack.pop() as { value: unknown; depth: number };
    if (typeof current !== 'object' || current === null) continue;
    if (depth >= limit) return true;
    for (const child of Array.isArray(current) ? current : Object.values(current)) {
      if (typeof child === 'object' && child !== null) stack.push({ value: child, depth: depth + 1 });
    }
  }
  return false;
}
