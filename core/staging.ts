import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { RejectedRecord, StagedEvent } from './event-log.js';
import { runEventTypes } from './events.js';

const BUFFER_BYTES = 1 << 20;
const RUN_EVENT_TYPES: ReadonlySet<string> = new Set(runEventTypes);

/**
 * A batch on its way into the log, written to NDJSON files as it grows so that a large batch never sits in memory.
 * DuckDB loads the files with `read_json` in one statement. Each line carries the event's JSON text untouched, an
 * index into the batch's sources, and the position.
 */
export class StagingBatch {
  readonly eventsFile: string;
  readonly rejectsFile: string;
  readonly sourcesFile: string;
  readonly runsFile: string;
  private readonly idsFile: string;
  /** The event ids of the batch per run, and the last run looked up (events of a run tend to come together). */
  private readonly idsByRun = new Map<string, Set<string>>();
  private lastRun: { runId: string; ids: Set<string> } | undefined;
  /** The streams of which the batch holds events of other kinds than a run's (a proposal, a harness version). */
  private readonly otherKindRuns = new Set<string>();
  /** Events left out because the batch already held an event with the same run and id. */
  repeated = 0;
  readonly sources: { format: string; file: string | null }[] = [];
  /** Events written per source, by index into `sources`. */
  private readonly sourceEvents: number[] = [];
  private readonly sourceIndex = new Map<string, number>();
  private lastSource: { format: string; file: string | null; index: number } | undefined;
  private sealed = false;
  private readonly eventsDescriptor: number;
  private readonly buffer = Buffer.allocUnsafe(BUFFER_BYTES);
  private buffered = 0;
  /** Events written to the batch (repeats left out). */
  eventCount = 0;
  rejects: RejectedRecord[] = [];

  constructor(folder: string, name: string) {
    mkdirSync(folder, { recursive: true });
    this.eventsFile = join(folder, `${name}.events.ndjson`);
    this.rejectsFile = join(folder, `${name}.rejects.ndjson`);
    this.sourcesFile = join(folder, `${name}.sources.ndjson`);
    this.runsFile = join(folder, `${name}.runs.ndjson`);
    this.idsFile = join(folder, `${name}.ids.ndjson`);
    this.eventsDescriptor = openSync(this.eventsFile, 'w');
  }

  /** Adds an event, unless the batch already holds one with the same run and id (the first one wins). */
  addEvent(event: StagedEvent): void {
    const ids = this.idsOf(event.runId);
    if (ids.has(event.id)) {
      this.repeated++;
      return;
    }
    ids.add(event.id);
    if (!RUN_EVENT_TYPES.has(event.type)) this.otherKindRuns.add(event.runId);
    const source = this.indexSource(event.format, event.file ?? null);
    const position = event.position === undefined ? 'null' : JSON.stringify(event.position);
    this.write(`{"o":${this.eventCount},"s":${source},"p":${position},"e":`);
    this.write(event.json);
    this.write('}\n');
    this.eventCount++;
    this.sourceEvents[source] = (this.sourceEvents[source] ?? 0) + 1;
  }

  addReject(reject: RejectedRecord): void {
    this.rejects.push(reject);
  }

  /** Finishes writing; after this the files are ready for DuckDB. */
  seal(): void {
    if (this.sealed) return;
    this.sealed = true;
    this.flushBuffer();
    closeSync(this.eventsDescriptor);
    writeFileSync(
      this.runsFile,
      [...this.idsByRun.keys()]
        .map((runId) => JSON.stringify({ runId, otherKinds: this.otherKindRuns.has(runId) }))
        .join('\n'),
    );
    writeFileSync(
      this.sourcesFile,
      this.sources.map((source, index) => JSON.stringify({ index, ...source })).join('\n'),
    );
    writeFileSync(
      this.rejectsFile,
      this.rejects.map((reject) => JSON.stringify({ id: rejectId(reject), ...reject })).join('\n'),
    );
  }

  /** Whether the batch holds events of other kinds than a run's. */
  get holdsOtherKinds(): boolean {
    return this.otherKindRuns.size > 0;
  }

  /** Writes the ids of the batch's events of the given runs to a file (run and id per line); returns its path. */
  writeEventIds(runIds: readonly string[]): string {
    const lines: string[] = [];
    for (const runId of runIds) {
      for (const id of this.idsByRun.get(runId) ?? []) lines.push(JSON.stringify({ runId, id }));
    }
    writeFileSync(this.idsFile, lines.join('\n'));
    return this.idsFile;
  }

  /** Whether this batch holds an event (run and id) that `other` holds too. */
  sharesEventsWith(other: StagingBatch): boolean {
    for (const [runId, ids] of this.idsByRun) {
      const otherIds = other.idsByRun.get(runId);
      if (otherIds === undefined) continue;
      const [fewer, more] = ids.size <= otherIds.size ? [ids, otherIds] : [otherIds, ids];
      for (const id of fewer) if (more.has(id)) return true;
    }
    return false;
  }

  /** Events written per source format. */
  eventsByFormat(): Record<string, number> {
    const counts: Record<string, number> = {};
    this.sources.forEach((source, index) => {
      counts[source.format] = (counts[source.format] ?? 0) + (this.sourceEvents[index] ?? 0);
    });
    return counts;
  }

  dispose(): void {
    for (const file of [this.eventsFile, this.rejectsFile, this.sourcesFile, this.runsFile, this.idsFile])
      rmSync(file, { force: true });
  }

  /** Encodes text into the fixed buffer, writing the buffer out first when the text might not fit. */
  private write(text: string): void {
    if (this.buffered + text.length * 3 > this.buffer.length) {
      this.flushBuffer();
      if (text.length * 3 > this.buffer.length) {
        writeSync(this.eventsDescriptor, text);
        return;
      }
    }
    this.buffered += this.buffer.write(text, this.buffered);
  }

  private flushBuffer(): void {
    if (this.buffered > 0) writeSync(this.eventsDescriptor, this.buffer, 0, this.buffered);
    this.buffered = 0;
  }

  private idsOf(runId: string): Set<string> {
    if (this.lastRun?.runId === runId) return this.lastRun.ids;
    let ids = this.idsByRun.get(runId);
    if (ids === undefined) {
      ids = new Set();
      this.idsByRun.set(runId, ids);
    }
    this.lastRun = { runId, ids };
    return ids;
  }

  private indexSource(format: string, file: string | null): number {
    const last = this.lastSource;
    if (last !== undefined && last.format === format && last.file === file) return last.index;
    const key = `${format}\u0000${file ?? ''}`;
    let index = this.sourceIndex.get(key);
    if (index === undefined) {
      index = this.sources.length;
      this.sources.push({ format, file });
      this.sourceIndex.set(key, index);
    }
    this.lastSource = { format, file, index };
    return index;
  }
}

/**
 * A reject's id: the same record rejected again (a re-import) is kept once. The raw text is part of it, so that two
 * different records refused at the same place (line 3 of two HTTP requests) are both kept.
 */
function rejectId(reject: RejectedRecord): string {
  return createHash('sha256')
    .update(
      `${reject.format}\u0000${reject.file ?? ''}\u0000${reject.position ?? ''}\u0000${reject.reason}\u0000${reject.raw}`,
    )
    .digest('hex')
    .slice(0, 32);
}
