import { open, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describeSchemaError, type EventLog, type RejectedRecord, TraceEvent, UserError } from '../core/index.js';
import type { StagingBatch } from '../core/staging.js';
import type { Adapter, ParsedEvent, ParseOptions, SourceUnit } from './adapter.js';
import { adapters, findAdapter } from './adapters.js';

export interface IngestOptions extends ParseOptions {
  /** Read every unit as this format instead of detecting it. */
  format?: string;
  /** Events per transaction. Larger batches load faster; a crash loses at most one batch, which a re-run restores. */
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

const DEFAULT_BATCH_SIZE = 50_000;
const HEAD_BYTES = 4096;
const KEPT_REJECTS = 10_000;
const PROGRESS_INTERVAL_MS = 500;

/**
 * Reads every path (files and directories, walked recursively), detects each unit's format, validates every event,
 * and appends in batches of one transaction each. Importing the same input again adds nothing; a crash mid-way loses
 * at most the batch in flight, and running again completes the log without duplicates.
 */
export async function ingestPaths(
  log: EventLog,
  paths: readonly string[],
  options: IngestOptions = {},
): Promise<IngestSummary> {
  const forced = options.format === undefined ? undefined : requireAdapter(options.format);
  const skipped: IngestSummary['skipped'] = [];
  const units: PlannedUnit[] = [];
  for (const path of paths) {
    const absolute = resolve(path);
    const info = await stat(absolute).catch(() => undefined);
    if (!info) throw new UserError(`Cannot ingest ${path}: no such file or directory.`);
    await planUnits(absolute, info.isDirectory(), forced, true, units, skipped);
  }
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
 * Fills staging batches and appends each full one while the next fills: DuckDB loads batch k on its own threads
 * while this thread parses and validates batch k + 1. At most one append is in flight.
 */
class BatchWriter {
  private batch: StagingBatch;
  private inFlight: Promise<void> | undefined;
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
    const event = parsed.data;
    const changed = applyOverrides(event, options);
    const summary = this.summaryFor(format);
    summary.events++;
    summary.runIds.add(event.runId);
    this.eventsRead++;
    this.batch.addEvent(
      {
        json: item.json !== undefined && !changed ? item.json : JSON.stringify(event),
        format: event.source?.format ?? format,
        file: event.source?.file ?? unit.path,
        position: event.source?.position ?? item.position,
      },
      event.runId,
      event.id,
    );
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
    await this.inFlight;
    this.inFlight = this.log.append(full).then((result) => {
      for (const [format, count] of Object.entries(result.appendedByFormat)) this.summaryFor(format).appended += count;
    });
  }

  /** Appends what is left and waits until everything is committed. */
  async finish(): Promise<void> {
    await this.flush();
    await this.inFlight;
    this.batch.dispose();
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
