import { type Adapter, eventItem, type ParseItem, rejectItem, type SourceUnit } from './adapter.js';
import { parseJsonLine } from './json-text.js';
import { readLineBatches } from './lines.js';

const FORMAT = 'native';
const GROUP_LINES = 256;
/** How many non-empty lines of the head detection looks at: one damaged line must not hide the events after it. */
const DETECTION_LINES = 8;
const NATIVE_TYPE = /"type"\s*:\s*"(run-start|step-create|tool-call|tool-result|run-verify|run-end)"/;

/**
 * The project's own format: one `TraceEvent` per line as JSON (NDJSON). It is what the runtime writes, what
 * `POST /v1/events` accepts, and the fastest way in: a valid line is stored as it was written.
 */
export const nativeAdapter: Adapter = {
  format: FORMAT,
  description: 'selfharness NDJSON events, one event per line (.ndjson, .jsonl)',
  claimsFile(file, head) {
    return /\.(ndjson|jsonl)$/i.test(file) && looksLikeNativeEvents(head);
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

/**
 * Whether a JSON-lines file's head holds native events: any of its first non-empty lines names an event type, so that
 * a damaged first line does not turn the whole file away (it is rejected at `line 1`, and the rest loads). An empty
 * file is claimed (it holds no events), and so is a first record that the head cuts off before its type could be seen:
 * a record longer than the head, or a file cut short inside its first line; its lines are then judged one by one.
 */
function looksLikeNativeEvents(head: string): boolean {
  const lines = head.split('\n');
  const filled = lines.filter((line) => line.trim() !== '').slice(0, DETECTION_LINES);
  if (filled.length === 0) return true;
  if (filled.some((line) => NATIVE_TYPE.test(line))) return true;
  const onlyOpenLine = filled.length === 1 && lines.at(-1) === filled[0];
  return onlyOpenLine && filled[0]?.trimStart().startsWith('{') === true && !parsesAsJson(filled[0]);
}

function parsesAsJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
