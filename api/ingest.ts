import { isUtf8 } from 'node:buffer';
import {
  type AppendOptions,
  type AppendResult,
  describeSchemaError,
  type EventLog,
  type RejectedRecord,
  type StagingBatch,
  stageTraceEvent,
  TraceEvent,
} from '../core/index.js';
import { firstInvalidUtf8Byte } from '../ingest/json-text.js';
import { parseOtlpTraces } from '../ingest/otel.js';
import { readArrowEvents } from './arrow.js';

const FORMAT = 'http';

/** What `POST /v1/events` answers: the new events, the repeats, and every refused line with its reason. */
export interface EventsReceipt {
  accepted: number;
  duplicates: number;
  rejected: { line: number; reason: string }[];
}

/** A request's events, validated and staged, waiting for their turn on the log. */
export interface PreparedEvents {
  readonly batch: StagingBatch;
  readonly rejected: EventsReceipt['rejected'];
}

/**
 * Validates each line of an NDJSON body as a `TraceEvent` and stages the valid ones, as they were sent, together with
 * the refused lines (kept in `ingest_rejects`, format `http`, position `line N`, so nothing is lost), without touching
 * the database: a server prepares the next requests while DuckDB appends the ones before (`groupedAppends`).
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
      stageTraceEvent(batch, parsed, text);
    }
  } catch (error) {
    batch.dispose();
    throw error;
  }
  return { batch, rejected };
}

/** One request's prepared events, waiting for its group's turn on the log. */
interface WaitingRequest {
  prepared: PreparedEvents;
  resolve: (receipt: EventsReceipt) => void;
  reject: (error: unknown) => void;
}

export interface GroupedAppends {
  /** Appends a request's events with the group it falls in; resolves with its own receipt once they are committed. */
  append(prepared: PreparedEvents): Promise<EventsReceipt>;
}

/** The most events one group appends; the requests beyond wait for the next group. */
const GROUP_EVENTS = 100_000;

/**
 * Appends prepared requests in groups: the requests that arrive while the log is busy are appended together when
 * their turn comes (`exclusive`, the server's queue), in one transaction, which saves a commit and its disk flush per
 * request; each request still gets its own receipt, as if appended alone in arrival order. A group that fails fails
 * each of its requests, and none of their events is kept, so a client never sees an acknowledgement for lost events.
 */
export function groupedAppends(
  log: EventLog,
  exclusive: <T>(task: () => Promise<T>) => Promise<T>,
  options: AppendOptions = {},
): GroupedAppends {
  const waiting: WaitingRequest[] = [];
  let scheduled = false;
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    exclusive(appendGroup).catch(() => undefined);
  };
  const appendGroup = async () => {
    scheduled = false;
    let taken = 0;
    let events = 0;
    for (const request of waiting) {
      const count = request.prepared.batch.eventCount;
      if (taken > 0 && events + count > GROUP_EVENTS) break;
      events += count;
      taken++;
    }
    if (taken === 0) return;
    const group = waiting.splice(0, taken);
    if (waiting.length > 0) schedule();
    try {
      const results = await log.appendAll(
        group.map((request) => request.prepared.batch),
        options,
      );
      group.forEach((request, index) => {
        const result = results[index] as AppendResult;
        request.resolve({
          accepted: result.appended,
          duplicates: result.duplicates,
          rejected: request.prepared.rejected,
        });
      });
    } catch (error) {
      for (const request of group) request.reject(error);
    }
  };
  return {
    append: (prepared) =>
      new Promise<EventsReceipt>((resolve, reject) => {
        waiting.push({ prepared, resolve, reject });
        schedule();
      }),
  };
}

/** A line whose bytes are not UTF-8: refused with the offset of the first bad byte, kept with the bad bytes replaced. */
interface NotUtf8 {
  reason: string;
  raw: string;
}

const utf8 = new TextDecoder('utf-8');

/**
 * Splits a body into lines. A body that is valid UTF-8 (nearly always) is decoded at once; otherwise each line is
 * checked on its own, and the lines that are not UTF-8 are refused rather than loaded with replacement characters.
 */
function decodeLines(body: Uint8Array): (string | NotUtf8)[] {
  if (isUtf8(body)) return utf8.decode(body).split('\n');
  const lines: (string | NotUtf8)[] = [];
  for (let start = 0; start <= body.length; ) {
    const newline = body.indexOf(0x0a, start);
    const end = newline < 0 ? body.length : newline;
    const bytes = body.subarray(start, end);
    lines.push(
      isUtf8(bytes)
        ? utf8.decode(bytes)
        : {
            reason: `the line is not valid UTF-8 (first bad byte at offset ${firstInvalidUtf8Byte(bytes)}); send text encoded as UTF-8`,
            raw: utf8.decode(bytes),
          },
    );
    start = end + 1;
  }
  return lines;
}

/** The line's event, or why it was refused. */
function parseLine(text: string): TraceEvent | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return `invalid JSON: ${(error as Error).message}`;
  }
  // The common case, a valid event, is checked without building zod's copy of it; the line is stored as it was sent.
  if (TraceEvent.validate(value)) return value as TraceEvent;
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
