import {
  describeSchemaError,
  type EventLog,
  type RejectedRecord,
  type StagingBatch,
  stageTraceEvent,
  TraceEvent,
} from '../core/index.js';
import { parseOtlpTraces } from '../ingest/otel.js';
import { readArrowEvents } from './arrow.js';

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
export async function receiveEvents(log: EventLog, body: string | Uint8Array, source: string): Promise<EventsReceipt> {
  return appendReceived(log, prepareEvents(log, body, source));
}

/** A request's events, validated and staged, waiting for their turn on the log. */
export interface PreparedEvents {
  readonly batch: StagingBatch;
  readonly rejected: EventsReceipt['rejected'];
}

/**
 * Validates and stages a body's events without touching the database, so that a server can prepare the next request
 * while DuckDB appends the one before (`appendReceived`, one at a time).
 */
export function prepareEvents(log: EventLog, body: string | Uint8Array, source: string): PreparedEvents {
  const batch = log.createBatch();
  const rejected: EventsReceipt['rejected'] = [];
  const reject = (line: number, reason: string, raw: string) => {
    rejected.push({ line, reason });
    batch.addReject({ format: FORMAT, file: source, position: `line ${line}`, reason, raw });
  };
  try {
    const lines = typeof body === 'string' ? body.split('\n') : decodeLines(body);
    for (let index = 0; index < lines.length; index++) {
      const line = lines[index] as string | NotUtf8;
      if (typeof line !== 'string') {
        reject(index + 1, line.reason, line.raw);
        continue;
      }
      const text = line.replace(/\r$/, '');
      if (text.trim() === '') continue;
      const parsed = parseLine(text);
      if (typeof parsed === 'string') {
        reject(index + 1, parsed, text);
        continue;
      }
      stageTraceEvent(batch, parsed);
    }
  } catch (error) {
    batch.dispose();
    throw error;
  }
  return { batch, rejected };
}

/** Appends prepared events (and their rejects) in one transaction. */
export async function appendReceived(
  log: EventLog,
  prepared: PreparedEvents,
  options: { deferProjections?: boolean; singleThread?: boolean } = {},
): Promise<EventsReceipt> {
  const result = await log.append(prepared.batch, options);
  return { accepted: result.appended, duplicates: result.duplicates, rejected: prepared.rejected };
}

/** A line whose bytes are not UTF-8: refused with the offset of the first bad byte, kept with the bad bytes replaced. */
interface NotUtf8 {
  reason: string;
  raw: string;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const lenientUtf8 = new TextDecoder('utf-8');

/**
 * Splits a body into lines. A body that is valid UTF-8 (nearly always) is decoded at once; otherwise each line is
 * decoded on its own, and the lines that are not UTF-8 are refused rather than loaded with replacement characters.
 */
function decodeLines(body: Uint8Array): (string | NotUtf8)[] {
  try {
    return strictUtf8.decode(body).split('\n');
  } catch {
    const lines: (string | NotUtf8)[] = [];
    let start = 0;
    while (start <= body.length) {
      let end = body.indexOf(0x0a, start);
      if (end < 0) end = body.length;
      const bytes = body.subarray(start, end);
      try {
        lines.push(strictUtf8.decode(bytes));
      } catch {
        lines.push({
          reason: `the line is not valid UTF-8 (first bad byte at offset ${firstInvalidByte(bytes)}); send text encoded as UTF-8`,
          raw: lenientUtf8.decode(bytes),
        });
      }
      start = end + 1;
    }
    return lines;
  }
}

/** The offset of the first byte at which `bytes` stops being valid UTF-8. */
function firstInvalidByte(bytes: Uint8Array): number {
  let low = 0;
  let high = bytes.length;
  // The longest valid prefix, by bisection (a prefix cut inside a character also fails, so step back up to 3 bytes).
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (isUtf8Prefix(bytes.subarray(0, middle))) low = middle;
    else high = middle - 1;
  }
  return low;
}

function isUtf8Prefix(bytes: Uint8Array): boolean {
  for (let cut = 0; cut <= 3 && cut <= bytes.length; cut++) {
    try {
      strictUtf8.decode(bytes.subarray(0, bytes.length - cut));
      return true;
    } catch {
      // Try the prefix without a possibly cut character.
    }
  }
  return false;
}

/** The line's event, or why it was refused. */
function parseLine(text: string): TraceEvent | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return `invalid JSON: ${(error as Error).message}`;
  }
  const parsed = TraceEvent.safeParse(value);
  if (!parsed.success) return `event does not match its schema: ${describeSchemaError(parsed.error)}`;
  return parsed.data;
}

/** What `POST /v1/events` answers for an Arrow table: as for NDJSON, with refused rows by their row number (from 0). */
export interface ArrowEventsReceipt {
  accepted: number;
  duplicates: number;
  rejected: { row: number; reason: string }[];
}

/**
 * Validates each row of an Arrow IPC table (see `readArrowEvents` for its columns) as a `TraceEvent`; the valid ones
 * are appended in one transaction together with the refused rows, kept in `ingest_rejects` (format `http`, position
 * `row N`, the row as JSON) so nothing is lost. A body that is no Arrow table, or lacks a column, is refused whole.
 */
export async function receiveArrowEvents(log: EventLog, body: Uint8Array, source: string): Promise<ArrowEventsReceipt> {
  const events: TraceEvent[] = [];
  const rejects: RejectedRecord[] = [];
  const rejected: ArrowEventsReceipt['rejected'] = [];
  readArrowEvents(body).forEach((row, index) => {
    let reason: string;
    if ('reason' in row) reason = row.reason;
    else {
      const parsed = TraceEvent.safeParse(row.event);
      if (parsed.success) {
        events.push(parsed.data);
        return;
      }
      reason = `event does not match its schema: ${describeSchemaError(parsed.error)}`;
    }
    rejected.push({ row: index, reason });
    rejects.push({ format: FORMAT, file: source, position: `row ${index}`, reason, raw: row.raw });
  });
  const result = await log.appendEvents(events, rejects);
  return { accepted: result.appended, duplicates: result.duplicates, rejected };
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
