import type { Command } from 'commander';
import { UserError } from '../../core/index.js';
import { type GlobalOptions, withLog } from '../context.js';
import { formatTable, printJson, toPlain } from '../output.js';

export function registerQuery(program: Command, globals: () => GlobalOptions): void {
  program
    .command('sql')
    .description(
      'Run a read-only SQL query over the log and its tables (events, runs, steps, tool_calls, verifications, ingest_rejects)',
    )
    .argument('<query>', 'the SQL query')
    .option('--csv', 'print CSV')
    .action(async (query: string, options: { csv?: boolean }) => {
      const global = globals();
      const rows = await withLog(
        global,
        async (log) => {
          try {
            return await log.query(query);
          } catch (error) {
            throw new UserError(`Query failed: ${(error as Error).message.split('\n')[0]}`, { cause: error });
          }
        },
        true,
      );
      if (global.json) printJson(rows);
      else if (options.csv) process.stdout.write(toCsv(rows));
      else console.log(`${formatTable(rows)}\n(${rows.length} rows)`);
    });

  program
    .command('rejects')
    .description('List records that could not be loaded, with file, position and reason')
    .option('--limit <n>', 'how many', '50')
    .option('--raw', 'include the raw text')
    .action(async (options: { limit: string; raw?: boolean }) => {
      const global = globals();
      const rows = await withLog(
        global,
        (log) =>
          log.query(
            `SELECT format, file, position, reason${options.raw ? ', raw' : ''}, recorded_at FROM ingest_rejects ORDER BY recorded_at, file, position LIMIT $1`,
            [Number(options.limit)],
          ),
        true,
      );
      if (global.json) printJson(rows);
      else console.log(rows.length === 0 ? 'No rejected records.' : formatTable(rows));
    });

  program
    .command('status')
    .description('Summarise the log: events, runs per source and outcome, rejects')
    .action(async () => {
      const global = globals();
      const result = await withLog(
        global,
        async (log) => ({
          database: log.database.path,
          events: await log.countEvents(),
          runs: await log.query(
            "SELECT source_format AS format, count(*) AS runs, count(*) FILTER (WHERE outcome = 'passed') AS passed, count(*) FILTER (WHERE outcome = 'failed') AS failed, count(*) FILTER (WHERE outcome = 'invalid') AS invalid, count(*) FILTER (WHERE outcome NOT IN ('passed', 'failed', 'invalid')) AS other FROM runs GROUP BY 1 ORDER BY 1",
          ),
          rejects: Number((await log.query<{ n: bigint }>('SELECT count(*) AS n FROM ingest_rejects'))[0]?.n ?? 0n),
        }),
        true,
      );
      if (global.json) printJson(result);
      else {
        console.log(`${result.database}: ${result.events} events, ${result.rejects} rejected records\n`);
        console.log(formatTable(result.runs));
      }
    });
}

function toCsv(rows: readonly Record<string, unknown>[]): string {
  const first = rows[0];
  if (!first) return '';
  const names = Object.keys(first);
  const quote = (value: unknown) => {
    const plain = toPlain(value);
    const text =
      plain === null || plain === undefined ? '' : typeof plain === 'object' ? JSON.stringify(plain) : String(plain);
    return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  return `${[names.join(','), ...rows.map((row) => names.map((name) => quote(row[name])).join(','))].join('\n')}\n`;
}
