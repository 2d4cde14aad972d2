import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { MINING_TABLE_NAMES } from '../../analytics/schema.js';
import { VIEW_NAMES } from '../../analytics/views.js';
import { type EventLog, PROJECTION_TABLES, UserError } from '../../core/index.js';
import { databasePath, type GlobalOptions, withLog } from '../context.js';
import { formatCount, formatTable, printJson } from '../output.js';
import { createProgress } from '../progress.js';
import { isRunningInServer } from '../remote.js';

/** The relations an export writes, in order: the log, its projections, the rejects, the mining tables, the views. */
export const EXPORTED_RELATIONS: readonly { name: string; kind: 'table' | 'view' }[] = [
  { name: 'events', kind: 'table' },
  ...PROJECTION_TABLES.map((name) => ({ name, kind: 'table' as const })),
  { name: 'ingest_rejects', kind: 'table' },
  ...MINING_TABLE_NAMES.map((name) => ({ name, kind: 'table' as const })),
  ...VIEW_NAMES.map((name) => ({ name, kind: 'view' as const })),
];

export interface ExportedRelation {
  name: string;
  kind: 'table' | 'view';
  file: string;
  rows: number;
  columns: { name: string; type: string }[];
}

export interface ExportManifest {
  database: string;
  exportedAt: string;
  lastSeq: number;
  relations: ExportedRelation[];
}

/** A path as a SQL string literal: COPY takes no bound parameter for its target. */
function quotePath(path: string): string {
  return `'${path.replaceAll("'", "''")}'`;
}

/**
 * Writes every relation as `<name>.parquet` into `folder`, plus `manifest.json` (row counts and columns), from one
 * snapshot: the database is open read-only for the whole export.
 */
export async function exportParquet(
  log: EventLog,
  folder: string,
  onRelation?: (name: string, index: number, total: number) => void,
): Promise<ExportManifest> {
  const relations: ExportedRelation[] = [];
  for (const [index, relation] of EXPORTED_RELATIONS.entries()) {
    onRelation?.(relation.name, index, EXPORTED_RELATIONS.length);
    const file = `${relation.name}.parquet`;
    await log.database.run(
      `COPY (SELECT * FROM ${relation.name}) TO ${quotePath(join(folder, file))} (FORMAT parquet, COMPRESSION zstd)`,
    );
    const columns = await log.query<{ column_name: string; column_type: string }>(
      `DESCRIBE SELECT * FROM ${relation.name}`,
    );
    const [count] = await log.query<{ n: bigint }>(`SELECT count(*) AS n FROM ${relation.name}`);
    relations.push({
      name: relation.name,
      kind: relation.kind,
      file,
      rows: Number(count?.n ?? 0),
      columns: columns.map((column) => ({ name: column.column_name, type: column.column_type })),
    });
  }
  const manifest: ExportManifest = {
    database: log.database.path,
    exportedAt: new Date().toISOString(),
    lastSeq: await log.lastSeq(),
    relations,
  };
  writeFileSync(join(folder, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

export function registerExport(program: Command, globals: () => GlobalOptions): void {
  program
    .command('export')
    .description(
      'Write the log, its tables and every analyst view as Parquet files (one per relation, plus manifest.json), for DuckDB, pandas or Spark',
    )
    .requiredOption('--parquet <dir>', 'folder to write the Parquet files into (created if missing)')
    .action(async (options: { parquet: string }) => {
      const global = globals();
      if (isRunningInServer()) {
        // The server's DuckDB may write no file outside its staging folder, so COPY … TO would fail there.
        throw new UserError(
          `Cannot export while \`selfharness serve\` (pid ${process.pid}) owns ${databasePath(global)}: the server writes no files outside its staging folder. Stop the server (Ctrl-C in its terminal, or kill ${process.pid}) and run export again, or pull tables from it with POST /v1/sql as CSV or Arrow (format=csv or format=arrow).`,
        );
      }
      const folder = resolve(options.parquet);
      try {
        mkdirSync(folder, { recursive: true });
      } catch (error) {
        throw new UserError(
          `Cannot create export folder ${folder}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}. Pass another --parquet DIR.`,
          { cause: error },
        );
      }
      const progress = createProgress();
      const started = performance.now();
      const manifest = await withLog(
        global,
        (log) =>
          exportParquet(log, folder, (name, index, total) =>
            progress.update(`export: ${name} (${index + 1}/${total})`),
          ),
        true,
      );
      progress.done();
      if (global.json) printJson(manifest);
      else {
        console.log(
          formatTable(
            manifest.relations.map((relation) => ({
              relation: relation.name,
              kind: relation.kind,
              rows: relation.rows,
              file: relation.file,
            })),
          ),
        );
        const seconds = ((performance.now() - started) / 1000).toFixed(1);
        console.log(
          `\nWrote ${manifest.relations.length} Parquet files (${formatCount(manifest.relations.reduce((total, relation) => total + relation.rows, 0))} rows) and manifest.json to ${folder} in ${seconds} s.`,
        );
      }
    });
}
