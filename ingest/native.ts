import { type Adapter, eventItem, type ParseItem, rejectItem, type SourceUnit } from './adapter.js';
import { parseJsonLine } from './json-text.js';
import { readLineBatches } from './lines.js';

const FORMAT = 'native';
const GROUP_LINES = 256;

/**
 * The project's own format: one `TraceEvent` per line as JSON (NDJSON). It is what the runtime writes, what
 * `POST /v1/events` accepts, and the fastest way in: a valid line is stored as it was written.
 */
export const nativeAdapter: Adapter = {
  format: FORMAT,
  description: 'selfharness NDJSON events, one event per line (.ndjson, .jsonl)',
  claimsFile(file, head) {
    if (!/\.(ndjson|jsonl)$/i.test(file)) return false;
    const first = head.split('\n', 1)[0] ?? '';
    return (
      /"type"\s*:\s*"(run-start|step-create|tool-call|tool-result|run-verify|run-end)"/.test(first) ||
      first.trim() === ''
    );
  },
  async *parse(unit: SourceUnit): AsyncIterable<ParseItem[]> {
    // Small groups keep few parsed events alive at a time and let the orchestrator yield to the event loop often.
    for await (const lines of readLineBatches(unit.path, GROUP_LINES)) {
      const items: ParseItem[] = [];
      for (const line of lines) {
        if (line.text.trim() === '') continue;
        const parsed = parseJsonLine(line, 'record');
        if (!parsed.ok) {
          items.push(rejectItem(FORMAT, unit.path, `line ${line.number}`, parsed.reason, line.text));
          continue;
        }
        items.push(eventItem(parsed.value, line.text, `line ${line.number}`));
      }
      yield items;
    }
  },
};
