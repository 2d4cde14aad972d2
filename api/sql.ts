import { type DuckDBType, JSDuckDBValueConverter } from '@duckdb/node-api';
import { type Database, type EventLog, stagingRoot } from '../core/index.js';
import { type ChunkSlice, encodeArrowStream } from './arrow.js';
import { HttpProblem } from './problem.js';
import { toJsonValue } from './queries.js';

export const DEFAULT_ROW_LIMIT = 10_000;
/** Results are streamed from DuckDB's own chunks, so even the largest is never held as JavaScript objects. */
export const MAX_ROW_LIMIT = 1_000_000;
export const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * Forbids the server's database any file access but the log's staging folder, for good: whatever a query tries, DuckDB
 * itself refuses to read or write the host's files (the checks in `checkReadOnlyQuery` come first and say why).
 */
export async function restrictServerFileAccess(log: EventLog): Promise<void> {
  await log.database.restrictFileAccess([stagingRoot()]);
}

/** A query's result: its column names and at most `limit` rows; `truncated` says that more rows were left out. */
export interface QueryResult {
  columns: string[];
  rows: Record<string, unknown>[];
  truncated: boolean;
}

/**
 * Functions that read files, the network, secrets or the environment, or run SQL given as text. DuckDB's
 * `enable_external_access` cannot be turned off for one connection (and the log reads its staged batches from files),
 * so a query that names any of these is refused before it runs.
 */
const REFUSED_FUNCTIONS = new Set([
  'glob',
  'getenv',
  'query',
  'query_table',
  'sniff_csv',
  'delta_scan',
  'duckdb_secrets',
  'duckdb_settings',
  'load_aws_credentials',
  'http_get',
  'http_post',
  'which_secret',
]);
const REFUSED_FUNCTION_PATTERN = /^(read_|parquet_|iceberg_|postgres_|sqlite_|mysql_)|_scan$|_attach$/;

/** Table names are plain identifiers; a quoted path (`FROM '/etc/passwd'`) would read that file. */
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_$]*$/;

const ALLOWED =
  'Only one read-only statement is allowed: SELECT, WITH … SELECT, DESCRIBE, SHOW, SUMMARIZE or EXPLAIN, over the tables and views of the log.';

/**
 * Refuses everything but one read-only statement over the log's tables. DuckDB parses the text itself
 * (`json_serialize_sql` serialises SELECT statements only, so INSERT, COPY, ATTACH, PRAGMA, SET, INSTALL and LOAD fail
 * there), and the parsed tree is then searched for file-reading functions and file paths used as tables.
 */
export async function checkReadOnlyQuery(database: Database, sql: string): Promise<void> {
  const inner = sql.replace(/^\s*EXPLAIN(\s+ANALYZE)?\s+/i, '');
  const rows = await database.all<{ tree: string }>('SELECT CAST(json_serialize_sql($1::VARCHAR) AS VARCHAR) AS tree', [
    inner,
  ]);
  const tree = JSON.parse(rows[0]?.tree ?? '{}') as { error?: boolean; error_message?: string; statements?: unknown[] };
  if (tree.error) {
    const reason = tree.error_message?.startsWith('Only SELECT') ? 'it is not a SELECT' : tree.error_message;
    throw new HttpProblem(400, 'Query refused', `${ALLOWED} This statement was refused: ${reason}.`);
  }
  if ((tree.statements?.length ?? 0) !== 1) {
    throw new HttpProblem(
      400,
      'Query refused',
      `${ALLOWED} Got ${tree.statements?.length ?? 0} statements; send one at a time.`,
    );
  }
  const refusal = findRefusal(tree.statements);
  if (refusal) throw new HttpProblem(400, 'Query refused', `${ALLOWED} ${refusal}`);
}

/** Searches a parsed statement for a refused function or a table that is a file path; says which. */
function findRefusal(node: unknown): string | undefined {
  if (Array.isArray(node)) {
    for (const child of node) {
      const found = findRefusal(child);
      if (found) return found;
    }
    return undefined;
  }
  if (node === null || typeof node !== 'object') return undefined;
  const record = node as Record<string, unknown>;
  const name = record.function_name;
  if (typeof name === 'string' && (REFUSED_FUNCTIONS.has(name.toLowerCase()) || REFUSED_FUNCTION_PATTERN.test(name))) {
    return `Function ${name}() reads files or other sources outside the log.`;
  }
  if (record.type === 'BASE_TABLE' && typeof record.table_name === 'string' && !TABLE_NAME.test(record.table_name)) {
    return `"${record.table_name}" is not a table of the log (files cannot be read).`;
  }
  return findRefusal(Object.values(record));
}

/** The formats `POST /v1/sql` answers in. */
export type ResultFormat = 'json' | 'csv' | 'arrow';

/** A query's result as DuckDB fetched it: its columns and types, and chunks holding at most `limit` rows. */
export interface FetchedResult {
  columns: string[];
  types: DuckDBType[];
  slices: ChunkSlice[];
  rowCount: number;
  /** More rows than `limit` were there; they were left out. */
  truncated: boolean;
}

/**
 * Runs a checked query on a connection of its own and fetches at most `limit` rows (one more tells whether it was
 * truncated), kept in DuckDB's compact chunks until they are encoded. Reads thus never wait behind an append on the
 * log's connection, and after `timeoutMs` the interrupt stops this query alone; the caller gets a 504 problem.
 */
export async function fetchReadOnlyQuery(
  log: EventLog,
  sql: string,
  options: { limit: number; timeoutMs: number },
): Promise<FetchedResult> {
  const database = await log.database.connect();
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  try {
    await checkReadOnlyQuery(database, sql);
    timer = setTimeout(() => {
      timedOut = true;
      database.connection.interrupt();
    }, options.timeoutMs);
    const result = await database.connection.stream(sql);
    const slices: ChunkSlice[] = [];
    let fetched = 0;
    while (fetched <= options.limit) {
      const chunk = await result.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      slices.push({ chunk, rows: Math.min(chunk.rowCount, options.limit - fetched) });
      fetched += chunk.rowCount;
    }
    return {
      columns: result.columnNames(),
      types: result.columnTypes(),
      slices,
      rowCount: Math.min(fetched, options.limit),
      truncated: fetched > options.limit,
    };
  } catch (error) {
    if (error instanceof HttpProblem) throw error;
    if (timedOut) {
      throw new HttpProblem(
        504,
        'Query timed out',
        `The query ran longer than ${options.timeoutMs} ms and was interrupted. Narrow it (WHERE, LIMIT) or raise the server's --sql-timeout.`,
      );
    }
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new HttpProblem(400, 'Query failed', `The query failed: ${message}`);
  } finally {
    clearTimeout(timer);
    database.close();
  }
}

/** Runs a checked query (see `fetchReadOnlyQuery`) and returns its rows as JSON-safe objects. */
export async function runReadOnlyQuery(
  log: EventLog,
  sql: string,
  options: { limit: number; timeoutMs: number },
): Promise<QueryResult> {
  const result = await fetchReadOnlyQuery(log, sql, options);
  const rows: Record<string, unknown>[] = [];
  for (const slice of result.slices) {
    const columns = slice.chunk.convertColumns(JSDuckDBValueConverter);
    for (let row = 0; row < slice.rows; row++) {
      const object: Record<string, unknown> = {};
      result.columns.forEach((name, column) => {
        object[name] = toJsonValue(columns[column]?.[row]);
      });
      rows.push(object);
    }
  }
  return { columns: result.columns, rows, truncated: result.truncated };
}

/** About this many characters of JSON or CSV are encoded at a time. */
const TEXT_PIECE_CHARS = 1 << 16;

/**
 * Encodes a fetched result in the asked format, piece by piece as the response is read: JSON `{columns, rows,
 * truncated}`, CSV (a header line, then one line per row; nested values as JSON) or an Arrow IPC stream.
 */
export function* encodeResult(result: FetchedResult, format: ResultFormat): Generator<Uint8Array | string> {
  if (format === 'arrow') {
    yield* encodeArrowStream(result.columns, result.types, result.slices);
    return;
  }
  const json = format === 'json';
  const keys = result.columns.map((name) => `${JSON.stringify(name)}:`);
  let text = json
    ? `{"columns":${JSON.stringify(result.columns)},"rows":[`
    : `${result.columns.map(quoteCsv).join(',')}\n`;
  let first = true;
  for (const slice of result.slices) {
    const columns = slice.chunk.convertColumns(JSDuckDBValueConverter);
    for (let row = 0; row < slice.rows; row++) {
      if (json) {
        let line = first ? '{' : ',{';
        for (let column = 0; column < keys.length; column++) {
          const value = JSON.stringify(toJsonValue(columns[column]?.[row]) ?? null);
          line += column === 0 ? `${keys[column]}${value}` : `,${keys[column]}${value}`;
        }
        text += `${line}}`;
      } else {
        let line = '';
        for (let column = 0; column < keys.length; column++) {
          const value = quoteCsv(columns[column]?.[row]);
          line += column === 0 ? value : `,${value}`;
        }
        text += `${line}\n`;
      }
      first = false;
    }
    if (text.length >= TEXT_PIECE_CHARS) {
      yield text;
      text = '';
    }
  }
  if (json) text += `],"truncated":${result.truncated}}`;
  yield text;
}

/** One CSV field: empty for null, nested values as JSON, quoted when it holds a comma, quote or line break. */
function quoteCsv(value: unknown): string {
  const plain = toJsonValue(value);
  const text =
    plain === null || plain === undefined ? '' : typeof plain === 'object' ? JSON.stringify(plain) : String(plain);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
