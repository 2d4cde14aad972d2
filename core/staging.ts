import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { RejectedRecord, StagedEvent } from './event-log.js';

const FLUSH_CHARS = 1 << 20;

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
  private readonly keys = new Set<string>();
  private readonly runIds = new Set<string>();
  /** Events left out because the batch already held an event with the same run and id. */
  repeated = 0;
  readonly sources: { format: string; file: string | null }[] = [];
  private readonly sourceIndex = new Map<string, number>();
  private lastSource: { format: string; file: string | null; index: number } | undefined;
  private sealed = false;
  private readonly eventsDescriptor: number;
  private buffer = '';
  /** Events written to the batch (repeats left out). */
  eventCount = 0;
  rejects: RejectedRecord[] = [];

  constructor(folder: string, name: string) {
    mkdirSync(folder, { recursive: true });
    this.eventsFile = join(folder, `${name}.events.ndjson`);
    this.rejectsFile = join(folder, `${name}.rejects.ndjson`);
    this.sourcesFile = join(folder, `${name}.sources.ndjson`);
    this.runsFile = join(folder, `${name}.runs.ndjson`);
    this.eventsDescriptor = openSync(this.eventsFile, 'w');
  }

  /** Adds an event, unless the batch already holds one with the same run and id (the first one wins). */
  addEvent(event: StagedEvent, runId: string, id: string): void {
    const key = `${runId}\u0000${id}`;
    if (this.keys.has(key)) {
      this.repeated++;
      return;
    }
    this.keys.add(key);
    this.runIds.add(runId);
    const source = this.indexSource(event.format, event.file ?? null);
    const position = event.position === undefined ? 'null' : JSON.stringify(event.position);
    this.buffer += `{"o":${this.eventCount},"s":${source},"p":${position},"e":${event.json}}\n`;
    this.eventCount++;
    if (this.buffer.length >= FLUSH_CHARS) this.flushBuffer();
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
    writeFileSync(this.runsFile, [...this.runIds].map((runId) => JSON.stringify({ runId })).join('\n'));
    writeFileSync(
      this.sourcesFile,
      this.sources.map((source, index) => JSON.stringify({ index, ...source })).join('\n'),
    );
    writeFileSync(
      this.rejectsFile,
      this.rejects.map((reject) => JSON.stringify({ id: rejectId(reject), ...reject })).join('\n'),
    );
  }

  dispose(): void {
    for (const file of [this.eventsFile, this.rejectsFile, this.sourcesFile, this.runsFile])
      rmSync(file, { force: true });
  }

  private flushBuffer(): void {
    if (this.buffer.length > 0) writeSync(this.eventsDescriptor, this.buffer);
    this.buffer = '';
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

/** A reject's id: the same record rejected again (a re-import) is kept once. */
function rejectId(reject: RejectedRecord): string {
  return createHash('sha256')
    .update(`${reject.format}\u0000${reject.file ?? ''}\u0000${reject.position ?? ''}\u0000${reject.reason}`)
    .digest('hex')
    .slice(0, 32);
}
