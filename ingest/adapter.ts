import type { RejectedRecord } from '../core/index.js';

/**
 * One adapter per source format. An adapter reads files and turns them into plain event objects; it does not touch
 * the database. The orchestrator (`ingest.ts`) validates every event against the `TraceEvent` schema, applies the
 * user's overrides, rejects what fails with its position, and appends in batches.
 */
export interface ParsedEvent {
  kind: 'event';
  /** An event object in the shape of `TraceEvent`; validated by the orchestrator. */
  event: unknown;
  /** The event's exact JSON text when the adapter read it as-is (the native format), to skip re-serialising. */
  json?: string;
  /** Where the event is in its file, for events that carry no `source` of their own. */
  position?: string;
}

export interface ParsedReject {
  kind: 'reject';
  reject: RejectedRecord;
}

export type ParseItem = ParsedEvent | ParsedReject;

export interface ParseOptions {
  /** Filled into `run-start` events that lack them (the orchestrator does this; adapters may ignore it). */
  model?: string;
  dataset?: string;
}

/** A unit the walker found: a file, or a directory an adapter claims as a whole (a Harbor trial, a TB1 run). */
export interface SourceUnit {
  path: string;
  isDirectory: boolean;
}

export interface Adapter {
  /** The format name users pass to `--format` and see in summaries and in `runs.source_format`. */
  readonly format: string;
  /** One line for `selfharness ingest --help`. */
  readonly description: string;
  /**
   * Claims a directory as one unit of this format; the walker then does not descend into it.
   * `entries` are the names directly inside it.
   */
  claimsDirectory?(directory: string, entries: readonly string[]): boolean;
  /** Claims a file, given its path and its first 4 KiB as text. */
  claimsFile?(file: string, head: string): boolean;
  /**
   * Reads the unit and yields its events and rejects, streaming where the input may be large. Large inputs may yield
   * arrays of items, which saves a promise per record.
   */
  parse(unit: SourceUnit, options: ParseOptions): AsyncIterable<ParseItem | readonly ParseItem[]>;
  /**
   * The other files that parsing `file` reads by path (sub-agent and continuation trajectories): an import leaves them
   * out as units of their own, so each is read once.
   */
  linkedFiles?(file: string): Promise<string[]>;
}

/** Builds a reject item; positions read like `line 12` or `steps[3].tool_calls[0]`. */
export function rejectItem(format: string, file: string, position: string, reason: string, raw: string): ParsedReject {
  return { kind: 'reject', reject: { format, file, position, reason, raw } };
}

export function eventItem(event: unknown, json?: string, position?: string): ParsedEvent {
  const item: ParsedEvent = { kind: 'event', event };
  if (json !== undefined) item.json = json;
  if (position !== undefined) item.position = position;
  return item;
}
