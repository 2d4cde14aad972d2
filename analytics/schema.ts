import { createHash } from 'node:crypto';
import { type Database, UserError } from '../core/index.js';
import { detectorMacros } from './detectors.js';
import { VIEW_NAMES, viewDefinitions } from './views.js';

/**
 * Tables that mining writes. Like the projections, they are derived and can be recomputed (`selfharness mine`); the
 * log stays the only source of truth. Diagnoses are events (`diagnosis-create`), not rows here.
 *
 * - `embedding_cache`: one vector per embedder and content hash, so a second mining run embeds nothing new.
 * - `weakness_clusters` / `weakness_cluster_members`: the clusters of the latest mining run per `mining_id` (a hash
 *   of the mining options), ranked, with their cards; members are the detections (run, mechanism, steps, excerpt).
 */
export const MINING_TABLES = `
CREATE TABLE IF NOT EXISTS embedding_cache (
  embedder VARCHAR NOT NULL,
  content_hash VARCHAR NOT NULL,
  dimensions INTEGER NOT NULL,
  vector FLOAT[] NOT NULL,
  created_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (embedder, content_hash)
);
CREATE TABLE IF NOT EXISTS weakness_clusters (
  mining_id VARCHAR NOT NULL,
  cluster_id VARCHAR NOT NULL,
  rank INTEGER NOT NULL,
  label VARCHAR NOT NULL,
  mode VARCHAR NOT NULL,
  criticality VARCHAR NOT NULL,
  failure_count INTEGER NOT NULL,
  run_count INTEGER NOT NULL,
  task_count INTEGER NOT NULL,
  mechanisms VARCHAR[] NOT NULL,
  tasks VARCHAR[] NOT NULL,
  models VARCHAR[] NOT NULL,
  score DOUBLE NOT NULL,
  card JSON NOT NULL,
  created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS weakness_cluster_members (
  mining_id VARCHAR NOT NULL,
  cluster_id VARCHAR NOT NULL,
  run_id VARCHAR NOT NULL,
  mechanism VARCHAR NOT NULL,
  first_step INTEGER,
  evidence_steps INTEGER[] NOT NULL,
  excerpt VARCHAR
);
`;

/** The mining tables (`MINING_TABLES` declares them). */
export const MINING_TABLE_NAMES = ['embedding_cache', 'weakness_clusters', 'weakness_cluster_members'] as const;

/** The `selfharness_meta` key recording which definitions of the views and macros a database holds. */
const ANALYTICS_VERSION_KEY = 'analytics_version';

/** Every statement that creates the detector macros and the views, in order. */
function analyticsStatements(temporary: boolean): string[] {
  const view = temporary ? 'CREATE OR REPLACE TEMP VIEW' : 'CREATE OR REPLACE VIEW';
  const definitions = viewDefinitions();
  return [...detectorMacros(temporary), ...VIEW_NAMES.map((name) => `${view} ${name} AS ${definitions[name]}`)];
}

let version: string | undefined;

/** A hash of the definitions: a database whose recorded version differs holds older views and gets them replaced. */
export function analyticsVersion(): string {
  version ??= createHash('sha256').update(analyticsStatements(false).join(';\n')).digest('hex').slice(0, 16);
  return version;
}

/**
 * Creates the mining tables, the detector macros (`detect_*`) and the analyst views (`run_summary`, …), and records
 * their version; macros and views are only replaced when their definitions changed. Needs a database opened for
 * writing; every write command of the command line calls it, so any database it touched can be queried with the views.
 */
export async function installAnalytics(database: Database): Promise<void> {
  await database.run(MINING_TABLES);
  if ((await installedVersion(database)) === analyticsVersion()) return;
  for (const statement of analyticsStatements(false)) await database.run(statement);
  await database.run(
    `INSERT INTO selfharness_meta VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    [ANALYTICS_VERSION_KEY, analyticsVersion()],
  );
}

/**
 * Makes the views and macros usable on this connection. A database opened for writing gets them installed
 * (`installAnalytics`); one opened read-only that lacks them, or holds an older version, gets temporary copies that
 * live as long as the connection (and empty temporary mining tables where it has none), so readers never depend on
 * which selfharness wrote the file last.
 */
export async function prepareAnalytics(database: Database): Promise<void> {
  if ((await installedVersion(database)) === analyticsVersion()) return;
  if (!(await isReadOnly(database))) {
    await installAnalytics(database);
    return;
  }
  const present = new Set(
    (
      await database.all<{ name: string }>("SELECT table_name AS name FROM duckdb_tables() WHERE schema_name = 'main'")
    ).map((row) => row.name),
  );
  if (!present.has('runs')) {
    throw new UserError(
      `Database ${database.path} has no event log tables: ingest traces first with \`selfharness ingest PATH\`.`,
    );
  }
  if (MINING_TABLE_NAMES.some((name) => !present.has(name))) {
    const missing = MINING_TABLES.replaceAll('CREATE TABLE IF NOT EXISTS', 'CREATE TEMP TABLE IF NOT EXISTS');
    for (const statement of splitStatements(missing)) {
      const name = /EXISTS (\w+)/.exec(statement)?.[1];
      if (name && !present.has(name)) await database.run(statement);
    }
  }
  for (const statement of analyticsStatements(true)) await database.run(statement);
}

async function installedVersion(database: Database): Promise<string | undefined> {
  try {
    const row = await database.one<{ value: string }>('SELECT value FROM selfharness_meta WHERE key = $1', [
      ANALYTICS_VERSION_KEY,
    ]);
    return row?.value;
  } catch {
    return undefined;
  }
}

async function isReadOnly(database: Database): Promise<boolean> {
  const row = await database.one<{ value: string }>("SELECT current_setting('access_mode') AS value");
  return String(row?.value).toLowerCase() === 'read_only';
}

function splitStatements(sql: string): string[] {
  return sql
    .split(';')
    .map((statement) => statement.trim())
    .filter((statement) => statement !== '');
}
