import type { Command } from 'commander';
import { type EventLog, PROJECTION_TABLES } from '../../core/index.js';
import { type GlobalOptions, withLog } from '../context.js';
import { formatTable, printJson } from '../output.js';

/** A table's row count and an order-independent checksum of its rows, to show that a rebuild changed nothing. */
async function fingerprint(log: EventLog, table: string): Promise<{ rows: number; checksum: string }> {
  const [row] = await log.query<{ n: bigint; h: bigint | null }>(
    `SELECT count(*) AS n, bit_xor(hash(t)) AS h FROM ${table} t`,
  );
  return { rows: Number(row?.n ?? 0), checksum: (row?.h ?? 0n).toString(16) };
}

export function registerRebuild(program: Command, globals: () => GlobalOptions): void {
  program
    .command('rebuild')
    .description('Recompute the runs, steps, tool_calls and verifications tables from the event log')
    .action(async () => {
      const global = globals();
      const report = await withLog(global, async (log) => {
        const before = Object.fromEntries(
          await Promise.all(PROJECTION_TABLES.map(async (table) => [table, await fingerprint(log, table)])),
        );
        const started = performance.now();
        const runs = await log.rebuild();
        const seconds = (performance.now() - started) / 1000;
        const tables = [];
        for (const table of PROJECTION_TABLES) {
          const after = await fingerprint(log, table);
          tables.push({
            table,
            rows: after.rows,
            checksum: after.checksum,
            unchanged: before[table].checksum === after.checksum && before[table].rows === after.rows,
          });
        }
        return { runs, seconds, tables };
      });
      if (global.json) printJson(report);
      else {
        console.log(formatTable(report.tables));
        console.log(`\nRebuilt ${report.runs} runs in ${report.seconds.toFixed(1)} s.`);
      }
    });
}
