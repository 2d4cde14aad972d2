import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database, type Row, type SqlValue } from './database.js';
import { SystemError } from './errors.js';
import type { TraceEvent } from './events.js';
import { firstSeqOfRuns, rebuildProjections, updateProjections } from './projections.js';
import { CREATE_TABLES, SCHEMA_VERSION } from './schema.js';
import { StagingBatch } from './staging.js';

/** An event ready to append: its JSON text (already validated) and where it came from. */
export interface StagedEvent {
  json: string;
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

/**
 * Appends the staged events that the log does not hold yet, numbering them in batch order. An event is identified by
 * its run and id (repeats within a batch are dropped while staging); all events of the batch's runs have
 * `seq >= $4`, so the check reads only their row groups, and none at all when every run of the batch is new
 * (`$4 > $2`).
 */
const LOAD_EVENTS = `
INSERT INTO events
SELECT $2 + row_number() OVER (ORDER BY staged.o), staged.e.id, staged.e.type, staged.e.runId,
       CAST(staged.e.time AS TIMESTAMPTZ), sources.format, sources.file, staged.p, staged.e.data, now()
FROM read_json($1, format = 'newline_delimited', columns = {
  o: 'BIGINT', s: 'INTEGER', p: 'VARCHAR',
  e: 'STRUCT(id VARCHAR, type VARCHAR, runId VARCHAR, time VARCHAR, data JSON)'
}) staged
JOIN read_json($3, format = 'newline_delimited', columns = {index: 'INTEGER', format: 'VARCHAR', file: 'VARCHAR'}) sources
  ON sources.index = staged.s
WHERE $4 > $2 OR NOT EXISTS (
  SELECT 1 FROM events existing
  WHERE existing.seq >= $4 AND existing.run_id = staged.e.runId AND existing.id = staged.e.id
)`;

const LOAD_REJECTS = `
INSERT INTO ingest_rejects
SELECT DISTINCT ON (id) id, format, file, position,
       CASE WHEN length(raw) > ${MAX_RAW_CHARS} THEN reason || ' (raw text cut to ${MAX_RAW_CHARS} characters)' ELSE reason END,
       left(raw, ${MAX_RAW_CHARS}), now()
FROM read_json($1, format = 'newline_delimited',
               columns = {id: 'VARCHAR', format: 'VARCHAR', file: 'VARCHAR', position: 'VARCHAR', reason: 'VARCHAR', raw: 'VARCHAR'}) staged
WHERE NOT EXISTS (SELECT 1 FROM ingest_rejects existing WHERE existing.id = staged.id)`;

/**
 * The append-only event log. Each append is one transaction: the batch's new events, its rejects and the projection
 * rows of the runs it touched are committed together, so a crash loses at most the batch in flight, and a re-run adds
 * exactly what is missing (event ids come from the source, so nothing is added twice).
 */
export class EventLog {
  private readonly stagingFolder: string;
  private stagingCounter = 0;

  private constructor(readonly database: Database) {
    this.stagingFolder = join(tmpdir(), `selfharness-staging-${process.pid}-${randomUUID().slice(0, 8)}`);
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
  }

  /** Starts a batch; fill it, then pass it to `append`. */
  createBatch(): StagingBatch {
    return new StagingBatch(this.stagingFolder, `batch-${this.stagingCounter++}`);
  }

  /** Appends events given as values (the runtime, tests). Same path as the importers. */
  async appendEvents(events: readonly TraceEvent[], rejects: readonly RejectedRecord[] = []): Promise<AppendResult> {
    const batch = this.createBatch();
    for (const event of events) {
      batch.addEvent(
        {
          json: JSON.stringify(event),
          format: event.source?.format ?? 'native',
          file: event.source?.file,
          position: event.source?.position,
        },
        event.runId,
        event.id,
      );
    }
    for (const reject of rejects) batch.addReject(reject);
    return this.append(batch);
  }

  /** Appends one batch of validated events and rejected records in a single transaction, then removes its files. */
  async append(batch: StagingBatch): Promise<AppendResult> {
    batch.seal();
    try {
      return await this.database.transaction(async () => {
        const before = await this.lastSeq();
        const appendedByFormat: Record<string, number> = {};
        let appended = 0;
        if (batch.eventCount > 0) {
          await this.database.run(
            "CREATE OR REPLACE TEMP TABLE staged_runs AS SELECT runId AS run_id FROM read_json($1, format = 'newline_delimited', columns = {runId: 'VARCHAR'})",
            [batch.runsFile],
          );
          const firstSeq = await firstSeqOfRuns(this.database, 'staged_runs', before + 1);
          await this.database.run('DROP TABLE staged_runs');
          await this.database.run(LOAD_EVENTS, [batch.eventsFile, before, batch.sourcesFile, firstSeq]);
          const counts = await this.database.all<{ format: string; n: bigint }>(
            'SELECT source_format AS format, count(*) AS n FROM events WHERE seq > $1 GROUP BY 1',
            [before],
          );
          for (const row of counts) {
            appendedByFormat[row.format] = Number(row.n);
            appended += Number(row.n);
          }
          if (appended > 0) await updateProjections(this.database, before);
        }
        let rejected = 0;
        if (batch.rejects.length > 0) {
          const countBefore = await this.countRows('ingest_rejects');
          await this.database.run(LOAD_REJECTS, [batch.rejectsFile]);
          rejected = (await this.countRows('ingest_rejects')) - countBefore;
        }
        return { appended, duplicates: batch.eventCount + batch.repeated - appended, rejected, appendedByFormat };
      });
    } finally {
      batch.dispose();
    }
  }

  private async countRows(table: 'events' | 'ingest_rejects'): Promise<number> {
    const row = await this.database.one<{ n: bigint }>(`SELECT count(*) AS n FROM ${table}`);
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
    return rebuildProjections(this.database);
  }

  async query<T extends Row = Row>(sql: string, values?: SqlValue[]): Promise<T[]> {
    return this.database.all<T>(sql, values);
  }

  close(): void {
    this.database.close();
    rmSync(this.stagingFolder, { recursive: true, force: true });
  }
}
