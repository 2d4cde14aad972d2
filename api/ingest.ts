import { describeSchemaError, type EventLog, type RejectedRecord, TraceEvent } from '../core/index.js';
import { parseOtlpTraces } from '../ingest/otel.js';

const FORMAT = 'http';

/** What `POST /v1/events` answers: the new events, the repeats, and every refused line with its reason. */
export interface EventsReceipt {
  accepted: number;
  duplicates: number;
  rejected: { line: number; reason: string }[];
}

/**
 * Validates each line of an NDJSON body as a `TraceEvent`; the valid ones are appended in one transaction together
 * with the refused lines, which are kept in `ingest_rejects` (format `http`, position `line N`) so nothing is lost.
 */
export async function receiveEvents(log: EventLog, body: string, source: string): Promise<EventsReceipt> {
  const events: TraceEvent[] = [];
  const rejects: RejectedRecord[] = [];
  const rejected: EventsReceipt['rejected'] = [];
  const lines = body.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const text = (lines[index] as string).replace(/\r$/, '');
    if (text.trim() === '') continue;
    const reason = parseLine(text, events);
    if (reason === undefined) continue;
    rejected.push({ line: index + 1, reason });
    rejects.push({ format: FORMAT, file: source, position: `line ${index + 1}`, reason, raw: text });
  }
  const result = await log.appendEvents(events, rejects);
  return { accepted: result.appended, duplicates: result.duplicates, rejected };
}

/** Adds the line's event to `events`, or returns why it was refused. */
function parseLine(text: string, events: TraceEvent[]): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return `invalid JSON: ${(error as Error).message}`;
  }
  const parsed = TraceEvent.safeParse(value);
  if (!parsed.success) return `event does not match its schema: ${describeSchemaError(parsed.error)}`;
  events.push(parsed.data);
  return undefined;
}

/** OTLP/HTTP's answer: `partialSuccess` counts the spans that were refused and says why (empty when none were). */
export interface TracesReceipt {
  partialSuccess: { rejectedSpans?: number; errorMessage?: string };
}

/**
 * Converts one OTLP/JSON `ExportTraceServiceRequest` with `parseOtlpTraces` and appends the events; what could not be
 * read is kept in `ingest_rejects` and reported the way OTLP exporters expect.
 */
export async function receiveTraces(log: EventLog, document: unknown, source: string): Promise<TracesReceipt> {
  const events: TraceEvent[] = [];
  const rejects: RejectedRecord[] = [];
  for (const item of parseOtlpTraces(document, source)) {
    if (item.kind === 'reject') {
      rejects.push(item.reject);
      continue;
    }
    const parsed = TraceEvent.safeParse(item.event);
    if (parsed.success) events.push(parsed.data);
    else {
      rejects.push({
        format: 'otel',
        file: source,
        position: item.position ?? 'span',
        reason: `event does not match its schema: ${describeSchemaError(parsed.error)}`,
        raw: JSON.stringify(item.event),
      });
    }
  }
  await log.appendEvents(events, rejects);
  if (rejects.length === 0) return { partialSuccess: {} };
  return {
    partialSuccess: {
      rejectedSpans: rejects.length,
      errorMessage: rejects
        .slice(0, 3)
        .map((reject) => `${reject.position}: ${reject.reason}`)
        .join('; '),
    },
  };
}
