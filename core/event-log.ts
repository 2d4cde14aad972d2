import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database, type Row, type SqlValue } from './database.js';
import { SystemError } from './errors.js';
import type { TraceEvent } from './events.js';
import { rebuildProjections, updateProjections } from './projections.js';
import { CREATE_TABLES, SCHEMA_VERSION } from './schema.js';

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
}

const MAX_RAW_CHARS = 1_000_000;

const LOAD_STAGED = `
INSERT INTO events
SELECT $2 + row_number() OVER (ORDER BY s.ord), s.id, s.type, s.run_id, s.time, s.sf, s.sfile, s.spos, s.data, now()
FROM (
  SELECT ord, e->>'id' AS id, e->>'type' AS type, e->>'runId' AS run_id, CAST(e->>'time' AS TIMESTAMPTZ) AS time,
         sf, sfile, spos, e->'data' AS data
  FROM read_json($1, format = 'newline_delimited', columns = {ord: 'BIGINT', sf: 'VARCHAR', sfile: 'VARCHAR', spos: 'VARCHAR', e: 'JSON'})
  QUALIFY row_number() OVER (PARTITION BY id ORDER BY ord) = 1
) s
WHERE NOT EXISTS (SELECT 1 FROM events x WHERE x.id = s.id)`;

/**
 * The append-only event log. Each `append` is one transaction: the batch's new events, its rejects and the
 * projection rows of the runs it touched are committed together, so a crash loses at most the batch in flight and a
 * re-run adds exactly what is missing (event ids come from the source).
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

  /** Appends events given as values (the runtime, tests). Same path as the importers. */
  async appendEvents(events: readonly TraceEvent[]): Promise<AppendResult> {
    return this.append(
      events.map((event) => ({
        json: JSON.stringify(event),
        format: event.source?.format ?? 'native',
        file: event.source?.file,
        position: event.source?.position,
      })),
      [],
    );
  }

  /** Appends one batch of validated events and rejected records in a single transaction. */
  async append(events: readonly StagedEvent[], rejects: readonly RejectedRecord[]): Promise<AppendResult> {
    const stagingFile = events.length > 0 ? this.writeStaging(events) : undefined;
    try {
      return await this.database.transaction(async () => {
        const before = await this.lastSeq();
        let appended = 0;
        if (stagingFile) {
          await this.database.run(LOAD_STAGED, [stagingFile, before]);
          appended = (await this.lastSeq()) - before;
          if (appended > 0) await updateProjections(this.database, before);
        }
        const rejected = await this.insertRejects(rejects);
        return { appended, duplicates: events.length - appended, rejected };
      });
    } finally {
      if (stagingFile) rmSync(stagingFile, { force: true });
    }
  }

  private writeStaging(events: readonly StagedEvent[]): string {
    mkdirSync(this.stagingFolder, { recursive: true });
    const file = join(this.stagingFolder, `batch-${this.stagingCounter++}.ndjson`);
    const lines: string[] = new Array(events.length);
    for (let index = 0; index < events.length; index++) {
      const event = events[index] as StagedEvent;
      lines[index] =
        `{"ord":${index},"sf":${JSON.stringify(event.format)},"sfile":${event.file === undefined ? 'null' : JSON.stringify(event.file)},"spos":${event.position === undefined ? 'null' : JSON.stringify(event.position)},"e":${event.json}}`;
    }
    writeFileSync(file, `${lines.join('\n')}\n`);
    return file;
  }

  private async insertRejects(rejects: readonly RejectedRecord[]): Promise<number> {
    let inserted = 0;
    for (const reject of rejects) {
      const id = createHash('sha256')
        .update(`${reject.format}\u0000${reject.file ?? ''}\u0000${reject.position ?? ''}\u0000${reject.reason}`)
        .digest('hex')
        .slice(0, 32);
      const exists = await this.database.one('SELECT 1 FROM ingest_rejects WHERE id = $1', [id]);
      if (exists) continue;
      const raw = reject.raw.length > MAX_RAW_CHARS ? reject.raw.slice(0, MAX_RAW_CHARS) : reject.raw;
      await this.database.run('INSERT INTO ingest_rejects VALUES ($1, $2, $3, $4, $5, $6, now())', [
        id,
        reject.format,
        reject.file ?? null,
        reject.position ?? null,
        reject.raw.length > MAX_RAW_CHARS ? `${reject.reason} (raw text cut to ${MAX_RAW_CHARS} characters)` : reject.reason,
        raw,
      ]);
      inserted++;
    }
    return inserted;
  }

  async lastSeq(): Promise<number> {
    const row = await this.database.one<{ seq: bigint | null }>('SELECT max(seq) AS seq FROM events');
    return Number(row?.seq ?? 0);
  }

  async countEvents(): Promise<number> {
    const row = await this.database.one<{ n: bigint }>('SELECT count(*) AS n FROM events');
    return Number(row?.n ?? 0);
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
