import { mkdirSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { stagingRoot } from './event-log.js';

/**
 * A new folder for files that DuckDB is to read (rows staged for `read_json`), under the process's staging root: a
 * server's database may read no file anywhere else (`Database.restrictFileAccess`). The caller removes it.
 */
export function createStagingFolder(prefix: string): string {
  mkdirSync(stagingRoot(), { recursive: true });
  return mkdtempSync(join(stagingRoot(), prefix));
}
