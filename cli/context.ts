import { resolve } from 'node:path';
import { installAnalytics, prepareAnalytics } from '../analytics/schema.js';
import { EventLog, SelfharnessError, UserError } from '../core/index.js';

export interface GlobalOptions {
  db?: string;
  json?: boolean;
}

/** The database path: `--db`, else `SELFHARNESS_DB`, else `./selfharness.duckdb`. */
export function databasePath(options: GlobalOptions): string {
  return resolve(options.db ?? process.env.SELFHARNESS_DB ?? 'selfharness.duckdb');
}

/**
 * Opens the log, runs `work`, and always closes it. A write open installs the analyst views and detector macros
 * (`installAnalytics`), so every database a write command touched can be queried with them later; a read-only open of
 * a database without them (or with an older version) gets temporary copies for this connection.
 */
export async function withLog<T>(
  options: GlobalOptions,
  work: (log: EventLog) => Promise<T>,
  readOnly = false,
): Promise<T> {
  const log = await EventLog.open(databasePath(options), { readOnly });
  try {
    if (readOnly) await prepareReadOnly(log);
    else await installAnalytics(log.database);
    return await work(log);
  } finally {
    log.close();
  }
}

async function prepareReadOnly(log: EventLog): Promise<void> {
  try {
    await prepareAnalytics(log.database);
  } catch (error) {
    if (error instanceof SelfharnessError) throw error;
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new UserError(
      `Database ${log.database.path} lacks the analyst views (run_summary, detected_mechanisms, …) and they cannot be created read-only (${reason}). Create them once with \`selfharness rebuild\` (any write command such as \`selfharness ingest\` installs them too).`,
      { cause: error },
    );
  }
}
