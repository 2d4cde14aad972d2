import { open, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  describeSchemaError,
  type EventLog,
  type RejectedRecord,
  stageTraceEvent,
  TraceEvent,
  UserError,
} from '../core/index.js';
import type { StagingBatch } from '../core/staging.js';
import type { Adapter, ParsedEvent, ParseOptions, SourceUnit } from './adapter.js';
import { adapters, findAdapter } from './adapters.js';

export interface IngestOptions extends ParseOptions {
  /** Read every unit as this format instead of detecting it. */
  format?: string;
  /** Events per transaction. Larger batches load faster; a crash loses at most two (in flight), which a re-run restores. */
  batchSize?: number;
  onProgress?: (progress: IngestProgress) => void;
}

export interface IngestProgress {
  unitsDone: number;
  unitsTotal: number;
  currentPath?: string;
  eventsRead: number;
  rejects: number;
}

export interface FormatSummary {
  format: string;
  /** Files or directories read as this format. */
  units: number;
  runs: number;
  /** Valid events read. */
  events: number;
  /** Events new to the log; the rest were already there (a re-import). */
  appended: number;
  rejects: number;
}

export interface IngestSummary {
  formats: FormatSummary[];
  /** Rejected records of this ingest, in order: file, position, reason. */
  rejects: RejectedRecord[];
  /** Files no adapter recognised, with the reason. */
  skipped: { path: string; reason: string }[];
  totals: { units: number; runs: number; events: number; appended: number; rejects: number };
}

interface PlannedUnit extends SourceUnit {
  adapter: Adapter;
}

/** One DuckDB row group: a batch of new events is then written to the database file whole, without the WAL. */
export const DEFAULT_BATCH_SIZE = 122_880;
const HEAD_BYTES = 4096;
const KEPT_REJECTS = 10_000;
const PROGRESS_INTERVAL_MS = 500;
const YIELD_INTERVAL_MS = 1;
/**
 * An import derives the projections of its new runs once at the end, which costs far less than once per batch; a long
 * one does it at least this often, so that they never lag far behind the log and one such transaction stays small.
 */
const PROJECT_EVERY_EVENTS = 4_000_000;
/** Batch k + 1 is read into the log while batch k commits; batch k + 2 fills meanwhile. */
const MAX_APPENDS_IN_FLIGHT = 2;

/**
 * Reads every path (files and directories, walked recursively), detects each unit's format, validates every event,
 * and appends in batches of one transaction each; the projections of the new runs are derived at the end (and every
 * few million events), in a transaction of their own. Importing the same input again adds nothing; a crash mid-way
 * loses at most the two batches in flight, and running again completes the log without duplicates (opening the log for
 * writing derives the projections the crash left out).
 */
export async function ingestPaths(
  log: EventLog,
  paths: readonly string[],
  options: IngestOptions = {},
): Promise<IngestSummary> {
  const forced = options.format === undefined ? undefined : requireAdapter(options.format);
  const skipped: IngestSummary['skipped'] = [];
  let units: PlannedUnit[] = [];
  for (const path of paths) {
    const absolute = resolve(path);
    const info = await stat(absolute).catch(() => undefined);
    if (!info) throw new UserError(`Cannot ingest ${path}: no such file or directory.`);
    await planUnits(absolute, info.isDirectory(), forced, true, units, skipped);
  }
  units = await leaveOutLinkedUnits(units);
  const batch = new BatchWriter(log, options.batchSize ?? DEFAULT_BATCH_SIZE);
  let unitsDone = 0;
  let lastReport = Date.now();
  for (const unit of units) {
    const summary = batch.summaryFor(unit.adapter.format);
    summary.units++;
    for await (const output of unit.adapter.parse({ path: unit.path, isDirectory: unit.isDirectory }, options)) {
      for (const item of Array.isArray(output) ? output : [output]) {
        const full = item.kind === 'reject' ? batch.addReject(item.reject) : batch.addEvent(unit, item, options);
        if (full) await batch.flush();
        else if (batch.isDatabaseWaiting()) await yieldToEventLoop();
      }
      if (Date.now() - lastReport > PROGRESS_INTERVAL_MS) {
        lastReport = Date.now();
        report(options, unitsDone, units.length, unit.path, batch);
      }
    }
    unitsDone++;
    report(options, unitsDone, units.length, unit.path, batch);
  }
  await batch.finish();
  return batch.summary(skipped);
}

function report(
  options: IngestOptions,
  unitsDone: number,
  unitsTotal: number,
  currentPath: string,
  batch: BatchWriter,
) {
  options.onProgress?.({
    unitsDone,
    unitsTotal,
    currentPath,
    eventsRead: batch.eventsRead,
    rejects: batch.rejectCount,
  });
}

function requireAdapter(format: string): Adapter {
  const adapter = findAdapter(format);
  if (!adapter) {
    throw new UserError(
      `Unknown format "${format}". Known formats: ${adapters.map((known) => known.format).join(', ')}.`,
    );
  }
  return adapter;
}

async function planUnits(
  path: string,
  isDirectory: boolean,
  forced: Adapter | undefined,
  named: boolean,
  units: PlannedUnit[],
  skipped: IngestSummary['skipped'],
): Promise<void> {
  const candidates = forced ? [forced] : adapters;
  if (!isDirectory) {
    const head = await readHead(path);
    const adapter = candidates.find((candidate) => candidate.claimsFile?.(path, head));
    if (adapter) units.push({ path, isDirectory: false, adapter });
    else if (forced && named) units.push({ path, isDirectory: false, adapter: forced });
    else skipped.push({ path, reason: forced ? `not ${forced.format} input` : 'not a known trace format' });
    return;
  }
  const entries = (await readdir(path, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
  const names = entries.map((entry) => entry.name);
  const claimant = candidates.find((candidate) => candidate.claimsDirectory?.(path, names));
  if (claimant) {
    units.push({ path, isDirectory: true, adapter: claimant });
    return;
  }
  for (const entry of entries) {
    if (entry.name.startsWith('.') || entry.isSymbolicLink()) continue;
    if (entry.isDirectory() || entry.isFile()) {
      await planUnits(join(path, entry.name), entry.isDirectory(), forced, false, units, skipped);
    }
  }
}

/** An adapter whose files may read other files as linked runs (an ATIF trajectory reads its sub-agents by path). */
type LinkedFilesOf = (file: string) => Promise<string[]>;

function linkedFilesOf(adapter: Adapter): LinkedFilesOf | undefined {
  return adapter.linkedFiles?.bind(adapter);
}

/**
 * Leaves out the file units that another unit of the same format reads as linked files: an ATIF sub-agent file
 * referenced by path is read by its parent, as a run linked to it; read standalone as well, it would be imported a
 * second time under another run id, and its rejects counted twice. A unit is left out only when a unit that is kept
 * reads it, directly or through other linked files, so files that only reference each other in a cycle still load.
 */
async function leaveOutLinkedUnits(units: PlannedUnit[]): Promise<PlannedUnit[]> {
  const linking = units.filter((unit) => !unit.isDirectory && linkedFilesOf(unit.adapter) !== undefined);
  if (linking.length === 0) return units;
  const linked = new Map<string, Promise<string[]>>();
  const linkedOf = (adapter: Adapter, file: string): Promise<string[]> => {
    const key = `${adapter.format}\u0000${file}`;
    let files = linked.get(key);
    if (!files) {
      files = (linkedFilesOf(adapter) as LinkedFilesOf)(file);
      linked.set(key, files);
    }
    return files;
  };
  const referenced = new Set<string>();
  for (const unit of linking) {
    for (const file of await linkedOf(unit.adapter, unit.path)) referenced.add(`${unit.adapter.format}\u0000${file}`);
  }
  if (referenced.size === 0) return units;
  const covered = new Set<string>();
  const cover = async (unit: PlannedUnit) => {
    const queue = [unit.path];
    while (queue.length > 0) {
      const file = queue.pop() as string;
      const key = `${unit.adapter.format}\u0000${file}`;
      if (covered.has(key)) continue;
      covered.add(key);
      queue.push(...(await linkedOf(unit.adapter, file)));
    }
  };
  const kept = new Set<PlannedUnit>();
  const keyOf = (unit: PlannedUnit) => `${unit.adapter.format}\u0000${unit.path}`;
  for (const unit of linking) {
    if (referenced.has(keyOf(unit))) continue;
    kept.add(unit);
    await cover(unit);
  }
  for (const unit of linking) {
    if (covered.has(keyOf(unit))) continue;
    kept.add(unit);
    await cover(unit);
  }
  const left = new Set(linking.filter((unit) => !kept.has(unit)));
  return units.filter((unit) => !left.has(unit));
}

async function readHead(file: string): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, HEAD_BYTES, 0);
    return buffer.toString('utf8', 0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Whether `applyOverrides` may change this (not yet validated) value. */
function mayFillIn(value: unknown, options: ParseOptions): boolean {
  return (
    (options.model !== undefined || options.dataset !== undefined) &&
    (value as { type?: unknown } | null)?.type === 'run-start'
  );
}

/** Fills in what a source lacks, from the user's `--model` / `--dataset`. Returns whether the event changed. */
function applyOverrides(event: TraceEvent, options: ParseOptions): boolean {
  if (event.type !== 'run-start') return false;
  let changed = false;
  if (options.model !== undefined && event.data.model === undefined) {
    event.data.model = options.model;
    changed = true;
  }
  if (options.dataset !== undefined && event.data.dataset === undefined) {
    event.data.dataset = options.dataset;
    changed = true;
  }
  return changed;
}

/**
 * Lets the event loop run: DuckDB reports a finished statement through it, and the append in flight issues its next
 * statement only then.
 */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Fills staging batches and appends each full one while the next fills: DuckDB loads batch k on its own threads
 * while this thread parses and validates batch k + 1. At most two appends are in flight, overlapping: batch k + 1 is
 * read into the log while batch k commits (`AppendOptions.overlap`). An append is a series of statements, and each one
 * starts only when this thread reaches the event loop, so while an append is in flight the parse loop yields about
 * every millisecond (`isDatabaseWaiting`); otherwise DuckDB would sit idle between statements.
 */
class BatchWriter {
  private batch: StagingBatch;
  /** The appends in flight, oldest first. */
  private readonly inFlight: Promise<void>[] = [];
  private appending = 0;
  /** Events appended since the projections were last derived. */
  private unprojected = 0;
  private checks = 0;
  private lastYield = 0;
  private readonly formats = new Map<string, FormatSummary & { runIds: Set<string> }>();
  private readonly keptRejects: RejectedRecord[] = [];
  eventsRead = 0;
  rejectCount = 0;

  constructor(
    private readonly log: EventLog,
    private readonly batchSize: number,
  ) {
    this.batch = log.createBatch();
  }

  summaryFor(format: string) {
    let summary = this.formats.get(format);
    if (!summary) {
      summary = { format, units: 0, runs: 0, events: 0, appended: 0, rejects: 0, runIds: new Set() };
      this.formats.set(format, summary);
    }
    return summary;
  }

  /** Adds a parsed event, or its reject when it fails the schema. Returns true when the batch is full. */
  addEvent(unit: PlannedUnit, item: ParsedEvent, options: ParseOptions): boolean {
    const format = unit.adapter.format;
    let event: TraceEvent;
    let json: string;
    if (item.json !== undefined && !mayFillIn(item.event, options) && TraceEvent.validate(item.event)) {
      // Valid, and stored as it was read: the parsed value serves as the event, without building zod's copy of it.
      event = item.event;
      json = item.json;
    } else {
      const parsed = TraceEvent.safeParse(item.event);
      if (!parsed.success) {
        const source = (item.event as { source?: { file?: string; position?: string } } | null)?.source;
        return this.addReject({
          format,
          file: source?.file ?? unit.path,
          position: source?.position ?? item.position,
          reason: `event does not match its schema: ${describeSchemaError(parsed.error)}`,
          raw: item.json ?? safeStringify(item.event),
        });
      }
      event = parsed.data;
      const changed = applyOverrides(event, options);
      json = item.json !== undefined && !changed ? item.json : JSON.stringify(event);
    }
    const summary = this.summaryFor(format);
    summary.events++;
    summary.runIds.add(event.runId);
    this.eventsRead++;
    stageTraceEvent(this.batch, event, json, { format, file: unit.path, position: item.position });
    return this.batch.eventCount >= this.batchSize;
  }

  /** Keeps a rejected record. Returns true when the batch is full. */
  addReject(reject: RejectedRecord): boolean {
    this.summaryFor(reject.format).rejects++;
    this.rejectCount++;
    this.batch.addReject(reject);
    if (this.keptRejects.length < KEPT_REJECTS) this.keptRejects.push(reject);
    return this.batch.rejects.length >= this.batchSize;
  }

  /** Hands the current batch to the log and starts a new one; waits for the previous append first. */
  async flush(): Promise<void> {
    if (this.batch.eventCount === 0 && this.batch.rejects.length === 0) return;
    const full = this.batch;
    this.batch = this.log.createBatch();
    while (this.inFlight.length >= MAX_APPENDS_IN_FLIGHT) await this.settleOldest();
    if (this.unprojected >= PROJECT_EVERY_EVENTS) await this.projectPending();
    this.appending++;
    const append = this.log
      .append(full, { deferProjections: true, overlap: true })
      .then((result) => {
        for (const [format, count] of Object.entries(result.appendedByFormat)) {
          this.summaryFor(format).appended += count;
          this.unprojected += count;
        }
      })
      .finally(() => {
        this.appending--;
      });
    // A failed append is reported where it is awaited (a later flush or finish), not as an unhandled rejection.
    append.catch(() => undefined);
    this.inFlight.push(append);
  }

  /**
   * Waits for the oldest append in flight. If it failed, waits for the others too (they fail with it) before throwing
   * its error, so that the caller may close the log: nothing runs on it any more.
   */
  private async settleOldest(): Promise<void> {
    try {
      await this.inFlight.shift();
    } catch (error) {
      await Promise.allSettled(this.inFlight.splice(0));
      throw error;
    }
  }

  /** Whether the parse loop should yield now: an append is in flight and about a millisecond has passed. */
  isDatabaseWaiting(): boolean {
    if (this.appending === 0 || ++this.checks % 16 !== 0) return false;
    const now = performance.now();
    if (now - this.lastYield < YIELD_INTERVAL_MS) return false;
    this.lastYield = now;
    return true;
  }

  /** Appends what is left, waits until everything is committed, and derives the projections of the new runs. */
  async finish(): Promise<void> {
    await this.flush();
    while (this.inFlight.length > 0) await this.settleOldest();
    this.batch.dispose();
    await this.projectPending();
  }

  private async projectPending(): Promise<void> {
    await this.log.projectPending();
    this.unprojected = 0;
  }

  summary(skipped: IngestSummary['skipped']): IngestSummary {
    const formats = [...this.formats.values()].map(({ runIds, ...summary }) => ({ ...summary, runs: runIds.size }));
    const sum = (key: keyof Omit<FormatSummary, 'format'>) => formats.reduce((total, format) => total + format[key], 0);
    return {
      formats,
      rejects: this.keptRejects,
      skipped,
      totals: {
        units: sum('units'),
        runs: sum('runs'),
        events: sum('events'),
        appended: sum('appended'),
        rejects: sum('rejects'),
      },
    };
  }
}

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
