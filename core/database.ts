import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type DuckDBConnection, DuckDBInstance, type DuckDBValue } from '@duckdb/node-api';
import { describeEnvironmentFailure, SystemError, UserError } from './errors.js';

/**
 * The one adapter over DuckDB. Values are always bound, never spliced into SQL; the rest of the project sees only
 * `Database` and plain row objects.
 */
export type SqlValue = DuckDBValue;

const timing = process.env.SELFHARNESS_SQL_TIMING === '1';
export type Row = Record<string, unknown>;

export interface OpenOptions {
  readOnly?: boolean;
}

/** A DuckDB instance and how many `Database` objects (connections) use it; it closes with the last of them. */
interface SharedInstance {
  instance: DuckDBInstance;
  readOnly: boolean;
  users: number;
  /** Settles when every write queued so far (`writeExclusively`, `continueWrite`) on any connection has ended. */
  writes: Promise<unknown>;
  /** The last write queued, as its caller got it. */
  lastWrite?: Promise<unknown>;
  /** The log's highest sequence number as the last append left it (see `Database.knownLastSeq`). */
  lastSeq?: number;
}

/**
 * The instances this process has open, by file. DuckDB lets one process write a file through one instance only: a
 * second open of the same file (the CLI's work run inside a running server, a read-only SQL session beside the writer)
 * gets a new connection on the instance already open.
 */
const openInstances = new Map<string, SharedInstance>();

export class Database {
  private threads: number | undefined;
  private closed = false;
  /**
   * A read-only open of a file this process has open for writing shares the writable instance; each of its statements
   * then runs in a `READ ONLY` transaction of its own, so DuckDB refuses any write as it would on a read-only file.
   */
  private readOnlyStatements = false;

  private constructor(
    readonly path: string,
    private readonly shared: SharedInstance,
    readonly connection: DuckDBConnection,
  ) {}

  /** Opens (or creates) a database file with errors that say what went wrong and what to do about it. */
  static async open(path: string, options: OpenOptions = {}): Promise<Database> {
    const absolute = path === ':memory:' ? path : resolve(path);
    if (absolute !== ':memory:') {
      const folder = dirname(absolute);
      if (!existsSync(folder)) {
        throw new UserError(
          `Cannot open database ${absolute}: folder ${folder} does not exist. Create it or pass another --db PATH.`,
        );
      }
      if (existsSync(absolute) && statSync(absolute).isDirectory()) {
        throw new UserError(`Cannot open database ${absolute}: it is a directory. Pass a file path with --db PATH.`);
      }
      if (options.readOnly && !existsSync(absolute)) {
        throw new UserError(
          `No database at ${absolute}: ingest traces first with \`selfharness ingest PATH\` or pass --db PATH.`,
        );
      }
    }
    const existing = absolute === ':memory:' ? undefined : openInstances.get(absolute);
    if (existing && (existing.readOnly ? options.readOnly : true)) {
      return Database.attach(absolute, existing, options.readOnly === true && !existing.readOnly);
    }
    let instance: DuckDBInstance;
    try {
      instance = await DuckDBInstance.create(absolute, options.readOnly ? { access_mode: 'READ_ONLY' } : {});
    } catch (error) {
      throw describeOpenError(absolute, error);
    }
    const shared: SharedInstance = {
      instance,
      readOnly: options.readOnly === true,
      users: 0,
      writes: Promise.resolve(),
    };
    const database = await Database.attach(absolute, shared);
    if (absolute !== ':memory:') {
      try {
        await database.checkLength();
      } catch (error) {
        database.close();
        throw error;
      }
      if (!existing) openInstances.set(absolute, shared);
    }
    return database;
  }

  /**
   * A file shorter than the blocks its header counts was cut short (a copy that stopped, a disk that filled up): DuckDB
   * would open it and fail only when a query reaches a missing block, so it is refused at once.
   */
  private async checkLength(): Promise<void> {
    // Replaying a write-ahead log can count blocks that are not in the file yet: check only a file without one.
    if (existsSync(`${this.path}.wal`)) return;
    const [size] = await this.all<{ block_size: bigint | number; used_blocks: bigint | number }>(
      'SELECT block_size, used_blocks FROM pragma_database_size() WHERE database_name = current_database()',
    );
    if (!size) return;
    // Each block in use lies somewhere in the file, so the file holds at least that many.
    const expected = Number(size.block_size) * Number(size.used_blocks);
    const actual = statSync(this.path).size;
    if (actual < expected) {
      throw new SystemError(
        `Cannot open database ${this.path}: the file is damaged (cut short: ${actual} bytes, its blocks in use need at least ${expected}). Move it aside and re-ingest, or pass another --db PATH.`,
      );
    }
  }

  private static async attach(path: string, shared: SharedInstance, guardReads = false): Promise<Database> {
    const connection = await shared.instance.connect();
    shared.users++;
    try {
      await connection.run("SET TimeZone = 'UTC'");
    } catch (error) {
      connection.closeSync();
      shared.users--;
      throw error;
    }
    const database = new Database(path, shared, connection);
    database.readOnlyStatements = guardReads;
    return database;
  }

  /** Runs one statement: timed, in a read-only transaction where this connection must not write, errors said plainly. */
  private async statement<T>(sql: string, work: () => Promise<T>): Promise<T> {
    try {
      if (!this.readOnlyStatements) return await timed(sql, work);
      await this.connection.run('BEGIN TRANSACTION READ ONLY');
      try {
        const result = await timed(sql, work);
        await this.connection.run('COMMIT');
        return result;
      } catch (error) {
        await this.connection.run('ROLLBACK').catch(() => undefined);
        throw error;
      }
    } catch (error) {
      throw describeStorageError(this.path, error);
    }
  }

  /**
   * Another connection to the same database, closed on its own: its statements run beside this one's (a long read
   * does not wait for a write transaction here, and interrupting it stops only its own statement).
   */
  async connect(): Promise<Database> {
    return Database.attach(this.path, this.shared);
  }

  /**
   * Forbids DuckDB any file access outside `allowedDirectories` from now on, for every connection to this database
   * (DuckDB's `enable_external_access = false`; it cannot be turned back on while the database is open). A server
   * calls it so that no query it runs can read or write the host's files; the log's own staging folder stays allowed.
   */
  async restrictFileAccess(allowedDirectories: readonly string[]): Promise<void> {
    const list = allowedDirectories.map((folder) => `'${resolve(folder).replaceAll("'", "''")}/'`).join(', ');
    await this.run(`SET allowed_directories = [${list}]`);
    await this.run('SET enable_external_access = false');
  }

  /** Runs a statement and returns the number of rows it inserted, updated or deleted. */
  async run(sql: string, values?: SqlValue[]): Promise<number> {
    const result = await this.statement(sql, () => this.connection.run(sql, values));
    return Number(result.rowsChanged);
  }

  async all<T extends Row = Row>(sql: string, values?: SqlValue[]): Promise<T[]> {
    const reader = await this.statement(sql, () => this.connection.runAndReadAll(sql, values));
    return reader.getRowObjectsJS() as T[];
  }

  async one<T extends Row = Row>(sql: string, values?: SqlValue[]): Promise<T | undefined> {
    const rows = await this.all<T>(sql, values);
    return rows[0];
  }

  /**
   * Caps the threads DuckDB runs a statement on (`undefined`: as many as it chose at open, one per core). Changing the
   * setting costs a statement, so an unchanged cap is not set again.
   */
  async limitThreads(threads: number | undefined): Promise<void> {
    if (threads === this.threads) return;
    await this.run(threads === undefined ? 'RESET threads' : `SET threads = ${Math.max(1, Math.floor(threads))}`);
    this.threads = threads;
  }

  /**
   * Runs `work` when the writes queued before it on every connection of this database in this process are done. The
   * log numbers its events from the highest number it holds, so two appends on two connections (a server's requests
   * and a job it runs) must not interleave.
   */
  writeExclusively<T>(work: () => Promise<T>): Promise<T> {
    return this.queueWrite(this.shared.writes, work);
  }

  /**
   * Runs `work` as the continuation of `previous`, a write still in flight that `writeExclusively` or this method
   * returned: it starts as soon as `ready` resolves (`previous` has done what `work` depends on), and the writes
   * queued from now on wait for both. No other write comes between them. Where one was queued after `previous`
   * already, there is no continuing it: returns `undefined`, and the caller queues `work` with `writeExclusively`.
   */
  continueWrite<T>(
    previous: Promise<unknown>,
    ready: Promise<unknown>,
    work: () => Promise<T>,
  ): Promise<T> | undefined {
    if (this.shared.lastWrite !== previous) return undefined;
    return this.queueWrite(ready, work);
  }

  private queueWrite<T>(start: Promise<unknown>, work: () => Promise<T>): Promise<T> {
    const result = start.then(work);
    this.shared.writes = Promise.allSettled([this.shared.writes, result]);
    this.shared.lastWrite = result;
    return result;
  }

  /** Runs `work` in one transaction: everything it wrote is committed together, or nothing is. */
  async transaction<T>(work: () => Promise<T>): Promise<T> {
    await this.run('BEGIN TRANSACTION');
    try {
      const result = await work();
      await this.run('COMMIT');
      return result;
    } catch (error) {
      await this.connection.run('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  /**
   * The event log's highest sequence number as the last append through this instance left it, shared by all its
   * connections; `undefined` until an append sets it, and after one that failed. Appends take turns
   * (`writeExclusively`) and no other process can write the file meanwhile, so it spares reading `max(seq)`.
   */
  get knownLastSeq(): number | undefined {
    return this.shared.lastSeq;
  }

  set knownLastSeq(seq: number | undefined) {
    this.shared.lastSeq = seq;
  }

  /** Closes this connection, and the database file with the last connection to it. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.connection.closeSync();
    this.shared.users--;
    if (this.shared.users > 0) return;
    if (openInstances.get(this.path) === this.shared) openInstances.delete(this.path);
    this.shared.instance.closeSync();
  }
}

/** Runs `work`, and with SELFHARNESS_SQL_TIMING=1 prints how long it took (including any wait for this thread). */
async function timed<T>(sql: string, work: () => Promise<T>): Promise<T> {
  if (!timing) return work();
  const started = performance.now();
  const result = await work();
  console.error(`[sql ${(performance.now() - started).toFixed(0)} ms] ${sql.trim().split('\n')[0]?.slice(0, 90)}`);
  return result;
}

/**
 * A statement's error, said plainly when the file under it failed: a block that cannot be read (a damaged file) or a
 * full disk. Other errors pass unchanged.
 */
function describeStorageError(path: string, error: unknown): unknown {
  const environment = describeEnvironmentFailure(error);
  if (environment) return environment;
  const message = error instanceof Error ? error.message : String(error);
  if (/Could not read enough bytes|Corrupt|checksum|Invalid block/i.test(message)) {
    return new SystemError(
      `Database ${path} is damaged (${firstLine(message).replace(/^IO Error: /, '')}). Move it aside and re-ingest, or pass another --db PATH.`,
      { cause: error },
    );
  }
  return error;
}

function describeOpenError(path: string, error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error);
  if (/lock/i.test(message)) {
    return new UserError(
      `Database ${path} is in use by another process (${firstLine(message).replace(/^IO Error: /, '')}). Wait for it to finish, or pass another --db PATH.`,
      { cause: error },
    );
  }
  if (/not a valid DuckDB database|Corrupt|checksum|unable to open|Serialization|IO Error/i.test(message)) {
    return new SystemError(
      `Cannot open database ${path}: ${firstLine(message)}. The file is damaged or not a selfharness database; pass another --db PATH, or move it aside and re-ingest.`,
      { cause: error },
    );
  }
  return new SystemError(`Cannot open database ${path}: ${firstLine(message)}`, { cause: error });
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}
