import { type EventLog, stagingRoot } from '../core/index.js';
import { HttpProblem } from './problem.js';
import { toJsonValue } from './queries.js';

export const DEFAULT_ROW_LIMIT = 10_000;
export const MAX_ROW_LIMIT = 100_000;
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
export async function checkReadOnlyQuery(log: EventLog, sql: string): Promise<void> {
  const inner = sql.replace(/^\s*EXPLAIN(\s+ANALYZE)?\s+/i, '');
  const rows = await log.query<{ tree: string }>('SELECT CAST(json_serialize_sql($1::VARCHAR) AS VARCHAR) AS tree', [
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

/**
 * Runs a checked query and reads at most `limit` rows (one more tells whether it was truncated). After `timeoutMs`
 * the query is interrupted and the caller gets a 504 problem. The caller must hold the log's connection alone: an
 * interrupt stops whatever runs on it.
 */
export async function runReadOnlyQuery(
  log: EventLog,
  sql: string,
  options: { limit: number; timeoutMs: number },
): Promise<QueryResult> {
  await checkReadOnlyQuery(log, sql);
  const connection = log.database.connection;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    connection.interrupt();
  }, options.timeoutMs);
  try {
    const reader = await connection.streamAndReadUntil(sql, options.limit + 1);
    const rows = reader.getRowObjectsJS();
    return {
      columns: reader.columnNames(),
      rows: rows.slice(0, options.limit).map((row) => toJsonValue(row) as Record<string, unknown>),
      truncated: rows.length > options.limit,
    };
  } catch (error) {
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
  }
}

/** The result as CSV: a header, then one line per row; nested values as JSON. */
export function toCsv(result: QueryResult): string {
  const quote = (value: unknown) => {
    const text =
      value === null || value === undefined ? '' : typeof value === 'object' ? JSON.stringify(value) : String(value);
    return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  const lines = [result.columns.map(quote).join(',')];
  for (const row of result.rows) lines.push(result.columns.map((column) => quote(row[column])).join(','));
  return `${lines.join('\n')}\n`;
}
