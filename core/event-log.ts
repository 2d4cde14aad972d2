import { randomUUID } from 'node:crypto';
import { rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database, type Row, type SqlValue } from './database.js';
import { SystemError } from './errors.js';
import type { TraceEvent } from './events.js';
import { projectPendingEvents, rebuildProjections } from './projections.js';
import { CREATE_TABLES, RUN_EVENT_TYPES_SQL, SCHEMA_VERSION } from './schema.js';
import { StagingBatch } from './staging.js';

/** An event ready to append: its JSON text (already validated), its key and type, and where it came from. */
export interface StagedEvent {
  json: string;
  runId: string;
  id: string;
  type: string;
  format: string;
  file?: string;
  position?: string;
}

/** A record that could not be loaded, kept with everything needed to find and fix it. */
export interface RejectedRecord {
  format: string;
  file?: string;
  position?: string;
  reason: string;
  raw: string;
}

export interface AppendOptions {
  /** Leave the projections of the appended runs for a later `projectPending` (an import derives them once at its end). */
  deferProjections?: boolean;
  /** Append on one DuckDB thread (the default with `deferProjections`), leaving the other cores to the caller. */
  singleThread?: boolean;
  /**
   * With `deferProjections` (an import's batches): start while the log's last such append is still committing, as
   * soon as its events are inserted, on a second connection. Its commit (writing the row group it filled, compressed,
   * to the file) then overlaps reading this batch. The two commit in order, and this one fails with the first if that
   * fails. A batch holding rejects, or an event that the append in flight holds too, waits for it to end instead.
   */
  overlap?: boolean;
}

/** An append started with `overlap`, while the next one may continue it. */
interface OverlappingAppend {
  batches: readonly StagingBatch[];
  /** Whether it runs on the log's second connection. */
  onSecond: boolean;
  /** The write as queued (see `Database.continueWrite`). */
  write: Promise<AppendResult[]>;
  /** The log's last sequence number once the append's events are inserted (not committed yet). */
  inserted: Promise<number>;
  /** Settles when the append it continued (if any) has ended: until then its connection is busy. */
  continued: Promise<unknown>;
}

export interface AppendResult {
  /** Events new to the log. */
  appended: number;
  /** Events whose id was already in the log (a re-import) or repeated in the batch. */
  duplicates: number;
  /** Rejected records newly kept in `ingest_rejects`. */
  rejected: number;
  /** New events per source format. */
  appendedByFormat: Record<string, number>;
}

const MAX_RAW_CHARS = 1_000_000;

function ignore(): void {}

/** A promise and the functions that settle it, for a value that a later step provides. */
function settledLater<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve: (value: T) => void = ignore;
  let reject: (error: unknown) => void = ignore;
  const promise = new Promise<T>((resolvePromise, rejectPromise) => {
    resolve = resolvePromise;
    reject = rejectPromise;
  });
  promise.catch(ignore);
  return { promise, resolve, reject };
}

/**
 * A sealed batch's events with the columns of `events` (but `recorded_at`), numbered after `$3` in batch order: repeats
 * within a batch were left out while staging, so the numbers are contiguous.
 */
const BATCH_EVENTS = `
SELECT CAST($3 AS BIGINT) + 1 + staged.o AS seq, staged.e.id, staged.e.type, staged.e.runId AS run_id,
       CAST(staged.e.time AS TIMESTAMPTZ) AS time, sources.format AS source_format, sources.file AS source_file,
       staged.p AS source_position, staged.e.data
FROM read_json($1, format = 'newline_delimited', columns = {
  o: 'BIGINT', s: 'INTEGER', p: 'VARCHAR',
  e: 'STRUCT(id VARCHAR, type VARCHAR, runId VARCHAR, time VARCHAR, data JSON)'
}) staged
JOIN read_json($2, format = 'newline_delimited', columns = {index: 'INTEGER', format: 'VARCHAR', file: 'VARCHAR'}) sources
  ON sources.index = staged.s`;

/** Appends a batch none of whose runs has events in the log: none of its events can be known already. */
const INSERT_BATCH = `INSERT INTO events SELECT *, now() FROM (${BATCH_EVENTS})`;

/** Reads a batch some of whose runs have events in the log into a temporary table, to leave those events out. */
const STAGE_EVENTS = `CREATE OR REPLACE TEMP TABLE staged_events AS ${BATCH_EVENTS}`;

/**
 * The batch's runs that have events in the log, with the lowest sequence number of those events: the `runs`
 * projection knows it for the runs it reflects, `unprojected_runs` bounds it for the others. Streams that are no runs
 * (a harness version, a proposal) have no projection row, so where the batch holds events of such kinds
 * (`otherKinds`), the log itself is searched for those streams' events; otherwise the search, which reads the type of
 * every event in the log, is left out.
 */
function findKnownRuns(otherKinds: boolean): string {
  const otherStreams = `
  UNION ALL SELECT run_id, seq FROM events
            WHERE run_id IN (SELECT run_id FROM batch WHERE other_kinds)
              AND type NOT IN (${RUN_EVENT_TYPES_SQL})`;
  return `
WITH batch AS (SELECT runId AS run_id, otherKinds AS other_kinds
               FROM read_json($1, format = 'newline_delimited', columns = {runId: 'VARCHAR', otherKinds: 'BOOLEAN'}))
SELECT run_id, min(first_seq) AS first_seq
FROM (
  SELECT run_id, first_seq FROM runs WHERE run_id IN (SELECT run_id FROM batch)
  UNION ALL SELECT run_id, first_seq FROM unprojected_runs WHERE run_id IN (SELECT run_id FROM batch)${otherKinds ? otherStreams : ''}
)
GROUP BY run_id`;
}

const FIND_KNOWN_RUNS = findKnownRuns(false);
const FIND_KNOWN_RUNS_AND_STREAMS = findKnownRuns(true);

/**
 * How many of the batch's events of known runs (listed in file `$1`) the log holds already. An event is identified by
 * its run and id; all events of those runs have `seq >= $2`, so the check reads only their row groups.
 */
const COUNT_KNOWN_EVENTS = `
SELECT count(*) AS n
FROM read_json($1, format = 'newline_delimited', columns = {runId: 'VARCHAR', id: 'VARCHAR'}) batch
JOIN events existing ON existing.run_id = batch.runId AND existing.id = batch.id
WHERE existing.seq >= $2`;

/** Leaves out the staged events the log already holds (see `COUNT_KNOWN_EVENTS`). */
const DROP_KNOWN_EVENTS = `
DELETE FROM staged_events
WHERE EXISTS (
  SELECT 1 FROM events existing
  WHERE existing.seq >= $1 AND existing.run_id = staged_events.run_id AND existing.id = staged_events.id
)`;

const ADD_UNPROJECTED_RUNS = `
INSERT INTO unprojected_runs
SELECT runId, CAST($2 AS BIGINT) + 1 FROM read_json($1, format = 'newline_delimited', columns = {runId: 'VARCHAR'})`;

/** After known events were left out: numbers the rest after `$1`, in batch order, so that `seq` stays contiguous. */
const INSERT_STAGED_RENUMBERED = `
INSERT INTO events
SELECT CAST($1 AS BIGINT) + row_number() OVER (ORDER BY seq), id, type, run_id, time, source_format, source_file,
       source_position, data, now()
FROM staged_events`;

const LOAD_REJECTS = `
INSERT INTO ingest_rejects
SELECT DISTINCT ON (id) id, format, file, position,
       CASE WHEN length(raw) > ${MAX_RAW_CHARS} THEN reason || ' (raw text cut to ${MAX_RAW_CHARS} characters)' ELSE reason END,
       left(raw, ${MAX_RAW_CHARS}), now()
FROM read_json($1, format = 'newline_delimited',
               columns = {id: 'VARCHAR', format: 'VARCHAR', file: 'VARCHAR', position: 'VARCHAR', reason: 'VARCHAR', raw: 'VARCHAR'}) staged
WHERE NOT EXISTS (SELECT 1 FROM ingest_rejects existing WHERE existing.id = staged.id)`;

/**
 * Adds an event given as a value to a batch, with its source; where the event names none (or part of one), with
 * `fallback`: the importer's format, file and position, or `native` when the caller knows none. `json` is its text
 * when the caller has it as it was sent (already validated as this event); otherwise the value is written out.
 */
export function stageTraceEvent(
  batch: StagingBatch,
  event: TraceEvent,
  json = JSON.stringify(event),
  fallback: { format: string; file?: string; position?: string } = { format: 'native' },
): void {
  batch.addEvent({
    json,
    runId: event.runId,
    id: event.id,
    type: event.type,
    format: event.source?.format ?? fallback.format,
    file: event.source?.file ?? fallback.file,
    position: event.source?.position ?? fallback.position,
  });
}

/**
 * The folder under which this process stages batches (one subfolder per open log). DuckDB reads staged batches from
 * here, so a database whose file access is restricted (`Database.restrictFileAccess`) must allow it.
 */
export function stagingRoot(): string {
  return join(tmpdir(), `selfharness-staging-${process.pid}`);
}

/**
 * The append-only event log. Each append is one transaction: the batch's new events, its rejects and the projection
 * rows of the runs it touched are committed together, so a crash loses at most the batches in flight, and a re-run adds
 * exactly what is missing (event ids come from the source, so nothing is added twice).
 */
export class EventLog {
  private readonly stagingFolder: string;
  private stagingCounter = 0;
  /** The last append with `overlap` while it is in flight. */
  private overlapping: OverlappingAppend | undefined;
  /** The connection on which every other overlapping append runs, opened with the first that needs it. */
  private secondConnection: Promise<Database> | undefined;
  private secondDatabase: Database | undefined;

  private constructor(readonly database: Database) {
    this.stagingFolder = join(stagingRoot(), randomUUID().slice(0, 8));
  }

  static async open(path: string, options: { readOnly?: boolean } = {}): Promise<EventLog> {
    const database = await Database.open(path, options);
    const log = new EventLog(database);
    if (!options.readOnly) {
      try {
        await log.migrate();
      } catch (error) {
        database.close();
        throw error;
      }
    }
    return log;
  }

  private async migrate(): Promise<void> {
    await this.database.run(CREATE_TABLES);
    const row = await this.database.one<{ value: string }>(
      "SELECT value FROM selfharness_meta WHERE key = 'schema_version'",
    );
    if (!row) {
      await this.database.run("INSERT INTO selfharness_meta VALUES ('schema_version', $1)", [String(SCHEMA_VERSION)]);
    } else if (Number(row.value) > SCHEMA_VERSION) {
      throw new SystemError(
        `Database ${this.database.path} has schema version ${row.value}, newer than this selfharness (${SCHEMA_VERSION}). Upgrade selfharness.`,
      );
    }
    await this.projectPending();
  }

  /** Starts a batch; fill it, then pass it to `append`. */
  createBatch(): StagingBatch {
    return new StagingBatch(this.stagingFolder, `batch-${this.stagingCounter++}`);
  }

  /**
   * Appends events given as values (the runtime, tests). Same path as the importers. With `deferProjections` the
   * projections catch up at the next append without it (or `projectPending`, or the next open): a writer that appends
   * a run step by step saves re-deriving the run each time.
   */
  async appendEvents(
    events: readonly TraceEvent[],
    rejects: readonly RejectedRecord[] = [],
    options: { deferProjections?: boolean } = {},
  ): Promise<AppendResult> {
    const batch = this.createBatch();
    for (const event of events) stageTraceEvent(batch, event);
    for (const reject of rejects) batch.addReject(reject);
    return this.append(batch, options);
  }

  /**
   * Appends one batch of validated events and rejected records in a single transaction, then removes its files. With
   * `deferProjections` (an import, which calls `projectPending` once at the end) the batch's runs are left for later;
   * otherwise their projection rows are derived in the same transaction.
   */
  async append(batch: StagingBatch, options: AppendOptions = {}): Promise<AppendResult> {
    const [result] = await this.appendAll([batch], options);
    return result as AppendResult;
  }

  /**
   * Appends several batches in one transaction, each as `append` would one after the other (an event of a later batch
   * that an earlier one holds is a duplicate), with one result per batch; all of them are kept, or none. A server
   * appends the requests that arrived while the log was busy this way, with one commit instead of one per request.
   */
  async appendAll(batches: readonly StagingBatch[], options: AppendOptions = {}): Promise<AppendResult[]> {
    try {
      for (const batch of batches) batch.seal();
      const overlap = options.overlap === true && options.deferProjections === true;
      const previous = overlap ? this.continuable(batches) : undefined;
      const onSecond = previous?.onSecond === false;
      // Settled once the events are inserted (or the append failed), for an append that continues this one.
      const inserted = settledLater<number>();
      const work = (continued?: OverlappingAppend) => async () =>
        this.appendInTransaction(await this.connection(onSecond), batches, options, continued, inserted.resolve);
      const ready = previous && Promise.all([previous.inserted, previous.continued]);
      ready?.catch(ignore);
      const continuing = previous && ready && this.database.continueWrite(previous.write, ready, work(previous));
      const write = continuing ?? this.database.writeExclusively(work());
      write.catch(inserted.reject);
      if (overlap) {
        const continued = continuing && previous ? previous.write.then(ignore, ignore) : Promise.resolve();
        this.trackOverlapping({ batches, onSecond, write, inserted: inserted.promise, continued });
      }
      return await write;
    } finally {
      for (const batch of batches) batch.dispose();
    }
  }

  /**
   * Appends the batches on `connection` in one transaction. Continuing `previous`, it numbers after the events
   * `previous` inserted and commits only once `previous` has; `markInserted` gets the last number once the events are
   * inserted, for the append that may continue this one.
   */
  private async appendInTransaction(
    connection: Database,
    batches: readonly StagingBatch[],
    options: AppendOptions,
    previous: OverlappingAppend | undefined,
    markInserted: (seq: number) => void,
  ): Promise<AppendResult[]> {
    // The caller of deferred appends (an import) parses the next batch meanwhile on the JavaScript thread, so a second
    // DuckDB thread would compete with it for the same cores; `projectPending` gives DuckDB all of them back.
    // `singleThread: false` keeps them all for the append too. The setting holds for every connection, so an append
    // that continues another runs as that one set it (its connection may be committing still).
    if (!previous) await this.database.limitThreads((options.singleThread ?? options.deferProjections) ? 1 : undefined);
    let lastSeq = previous ? await previous.inserted : (this.database.knownLastSeq ?? (await this.lastSeq()));
    try {
      const results = await connection.transaction(async () => {
        const results: AppendResult[] = [];
        for (const batch of batches) {
          const appendedByFormat =
            batch.eventCount > 0 ? await this.appendStagedEvents(connection, batch, lastSeq) : {};
          const appended = Object.values(appendedByFormat).reduce((total, count) => total + count, 0);
          lastSeq += appended;
          const rejected = batch.rejects.length > 0 ? await this.loadRejects(connection, batch) : 0;
          results.push({
            appended,
            duplicates: batch.eventCount + batch.repeated - appended,
            rejected,
            appendedByFormat,
          });
        }
        if (!options.deferProjections) await this.projectPendingEvents(connection);
        markInserted(lastSeq);
        await previous?.write;
        return results;
      });
      this.database.knownLastSeq = lastSeq;
      return results;
    } catch (error) {
      this.database.knownLastSeq = undefined;
      throw error;
    }
  }

  /**
   * The overlapping append in flight that `batches` may continue: none where they hold rejects (their check for
   * rejects kept already reads only committed ones) or an event that it holds too (likewise for events).
   */
  private continuable(batches: readonly StagingBatch[]): OverlappingAppend | undefined {
    const previous = this.overlapping;
    if (previous === undefined || batches.some((batch) => batch.rejects.length > 0)) return undefined;
    const shared = batches.some((batch) => previous.batches.some((other) => batch.sharesEventsWith(other)));
    return shared ? undefined : previous;
  }

  /** Keeps `append` as the one to continue until it ends (a failed one is not continued). */
  private trackOverlapping(append: OverlappingAppend): void {
    this.overlapping = append;
    const ended = () => {
      if (this.overlapping === append) this.overlapping = undefined;
    };
    append.write.then(ended, ended);
  }

  /** The log's connection, or its second one (opened with the first append that needs it). */
  private connection(second: boolean): Promise<Database> {
    if (!second) return Promise.resolve(this.database);
    this.secondConnection ??= this.database.connect().then((database) => {
      this.secondDatabase = database;
      return database;
    });
    return this.secondConnection;
  }

  /** Keeps the batch's rejected records that `ingest_rejects` does not hold yet; returns how many were new. */
  private async loadRejects(connection: Database, batch: StagingBatch): Promise<number> {
    const countBefore = await this.countRows('ingest_rejects', connection);
    await connection.run(LOAD_REJECTS, [batch.rejectsFile]);
    return (await this.countRows('ingest_rejects', connection)) - countBefore;
  }

  /**
   * Derives the projection rows of every run with events that the projections do not reflect yet (those of appends
   * with `deferProjections`, or of an import that a crash cut short), in one transaction. Returns the number of runs.
   */
  async projectPending(): Promise<number> {
    return this.database.writeExclusively(async () => {
      await this.database.limitThreads(undefined);
      return this.database.transaction(() => this.projectPendingEvents(this.database));
    });
  }

  private async projectPendingEvents(connection: Database): Promise<number> {
    const runs = await projectPendingEvents(connection);
    await connection.run('DELETE FROM unprojected_runs');
    return runs;
  }

  /**
   * Inserts the batch's events that the log does not hold yet; returns the new events per format. When no run of the
   * batch has events in the log (the common case: a first import), no event can be known already, and the batch goes
   * straight from its file into the log.
   */
  private async appendStagedEvents(
    connection: Database,
    batch: StagingBatch,
    before: number,
  ): Promise<Record<string, number>> {
    const knownRuns = await connection.all<{ run_id: string; first_seq: bigint }>(
      batch.holdsOtherKinds ? FIND_KNOWN_RUNS_AND_STREAMS : FIND_KNOWN_RUNS,
      [batch.runsFile],
    );
    const firstSeq = knownRuns.reduce((lowest, run) => Math.min(lowest, Number(run.first_seq)), before + 1);
    const knownEvents =
      knownRuns.length === 0
        ? 0
        : Number(
            (
              await connection.one<{ n: bigint }>(COUNT_KNOWN_EVENTS, [
                batch.writeEventIds(knownRuns.map((run) => run.run_id)),
                firstSeq,
              ])
            )?.n ?? 0,
          );
    let appendedByFormat: Record<string, number> = {};
    if (knownEvents === 0) {
      await connection.run(INSERT_BATCH, [batch.eventsFile, batch.sourcesFile, before]);
      appendedByFormat = batch.eventsByFormat();
    } else {
      // Rare (a re-import, or a source that repeats events across batches): leave the known events out, then number
      // the rest without gaps.
      await connection.run(STAGE_EVENTS, [batch.eventsFile, batch.sourcesFile, before]);
      await connection.run(DROP_KNOWN_EVENTS, [firstSeq]);
      for (const row of await connection.all<{ format: string; n: bigint }>(
        'SELECT source_format AS format, count(*) AS n FROM staged_events GROUP BY 1',
      )) {
        appendedByFormat[row.format] = Number(row.n);
      }
      await connection.run(INSERT_STAGED_RENUMBERED, [before]);
      await connection.run('DROP TABLE staged_events');
    }
    if (Object.keys(appendedByFormat).length > 0) {
      await connection.run(ADD_UNPROJECTED_RUNS, [batch.runsFile, before]);
    }
    return appendedByFormat;
  }

  private async countRows(table: 'events' | 'ingest_rejects', connection = this.database): Promise<number> {
    const row = await connection.one<{ n: bigint }>(`SELECT count(*) AS n FROM ${table}`);
    return Number(row?.n ?? 0);
  }

  async lastSeq(): Promise<number> {
    const row = await this.database.one<{ seq: bigint | null }>('SELECT max(seq) AS seq FROM events');
    return Number(row?.seq ?? 0);
  }

  async countEvents(): Promise<number> {
    return this.countRows('events');
  }

  /** Recomputes all projections from the log. */
  async rebuild(): Promise<number> {
    return this.database.writeExclusively(() => rebuildProjections(this.database));
  }

  async query<T extends Row = Row>(sql: string, values?: SqlValue[]): Promise<T[]> {
    return this.database.all<T>(sql, values);
  }

  close(): void {
    this.secondDatabase?.close();
    this.database.close();
    rmSync(this.stagingFolder, { recursive: true, force: true });
    try {
      rmdirSync(stagingRoot());
    } catch {
      // Another log of this process still stages there.
    }
  }
}
