import { resolve } from 'node:path';
import { EventLog } from '../core/index.js';

export interface GlobalOptions {
  db?: string;
  json?: boolean;
}

/** The database path: `--db`, else `SELFHARNESS_DB`, else `./selfharness.duckdb`. */
export function databasePath(options: GlobalOptions): string {
  return resolve(options.db ?? process.env.SELFHARNESS_DB ?? 'selfharness.duckdb');
}

/** Opens the log, runs `work`, and always closes it. */
export async function withLog<T>(
  options: GlobalOptions,
  work: (log: EventLog) => Promise<T>,
  readOnly = false,
): Promise<T> {
  const log = await EventLog.open(databasePath(options), { readOnly });
  try {
    return await work(log);
  } finally {
    log.close();
  }
}
