import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { hasSharedTraces, sharedTracesDir, sharedTracesSkipReason } from '../support/shared-traces.js';

/** Parses the simple CSV index files that come with the traces (no quoted commas in them). */
function readCsv(file: string): Record<string, string>[] {
  const [header, ...lines] = readFileSync(file, 'utf8').trim().split('\n');
  const names = (header ?? '').split(',');
  return lines.map((line) => Object.fromEntries(line.split(',').map((value, index) => [names[index], value])));
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}

describe.skipIf(!hasSharedTraces)(
  `selfharness ingest on the real traces (${hasSharedTraces ? sharedTracesDir : sharedTracesSkipReason})`,
  () => {
    let db: string;
    let first: { totals: { appended: number; rejects: number; runs: number } };

    async function sql(query: string): Promise<Record<string, unknown>[]> {
      const result = await runCli(['--db', db, '--json', 'sql', query]);
      expect(result.stderr).toBe('');
      return JSON.parse(result.stdout);
    }

    beforeAll(async () => {
      db = join(mkdtempSync(join(tmpdir(), 'selfharness-real-')), 'traces.duckdb');
      const result = await runCli(['--db', db, '--json', 'ingest', sharedTracesDir]);
      expect(result.code).toBe(0);
      first = JSON.parse(result.stdout);
    }, 180_000);

    it('loads every source without a reject', async () => {
      expect(first.totals.rejects).toBe(0);
      const formats = await sql('select distinct source_format as f from runs order by f');
      expect(formats.map((row) => row.f)).toEqual(['atif', 'harbor', 'swe-agent', 'swe-bench', 'tb1']);
    });

    it('gives the SWE-agent outcomes of index.csv for each model', async () => {
      const index = readCsv(join(sharedTracesDir, 'swe-agent-multi-swe-bench-java/index.csv'));
      const outcomeOf: Record<string, string> = {
        resolved: 'passed',
        unresolved: 'failed',
        empty_patch: 'failed',
        incomplete: 'invalid',
        error: 'invalid',
      };
      const expected = countBy(index, (row) => `${row.model} ${outcomeOf[row.label ?? '']}`);
      const rows = await sql(
        "select model, outcome, count(*) as n from runs where source_file like '%swe-agent-multi-swe-bench-java%' group by all",
      );
      expect(Object.fromEntries(rows.map((row) => [`${row.model} ${row.outcome}`, row.n]))).toEqual(expected);
      expect(expected).toMatchObject({
        'deepseek-chat-v2 passed': 9,
        'doubao-pro-128k passed': 1,
        'gpt-4o-2024-05-13 passed': 6,
      });
    });

    it('holds every Terminal-Bench 1 leaderboard outcome row, a run without steps where there is no trajectory', async () => {
      const index = readCsv(join(sharedTracesDir, 'tb1-leaderboard/outcomes_index.csv'));
      // The index lists one submission's run twice (a copied folder with the same trial ids); the log holds it once.
      const distinct = new Map(index.map((row) => [`${row.submission} ${row.trial_name}`, row]));
      const outcomeOf: Record<string, string> = { True: 'passed', False: 'failed', '': 'invalid' };
      const expected = countBy([...distinct.values()], (row) => outcomeOf[row.is_resolved ?? ''] ?? '?');
      const rows = await sql(
        "select outcome, count(*) as n from runs where source_file like '%tb1-leaderboard%' group by all",
      );
      expect(Object.fromEntries(rows.map((row) => [row.outcome, row.n]))).toEqual(expected);
      const withSteps = await sql(
        "select count(*) filter (where step_count > 0) as stepped, count(*) as total from runs where source_file like '%tb1-leaderboard%'",
      );
      expect(withSteps[0]).toEqual({ stepped: 8, total: distinct.size });
    });

    it('gives one run per SWE-bench Pro outcome entry, with its pass count', async () => {
      const folder = join(sharedTracesDir, 'outcomes/swe-bench-pro/traj');
      let entries = 0;
      let passed = 0;
      for (const run of readdirSync(folder, { withFileTypes: true }).filter((entry) => entry.isDirectory())) {
        const outcomes = JSON.parse(readFileSync(join(folder, run.name, 'eval_results.json'), 'utf8')) as Record<
          string,
          boolean
        >;
        entries += Object.keys(outcomes).length;
        passed += Object.values(outcomes).filter(Boolean).length;
      }
      expect(
        await sql(
          "select count(*) as n, count(*) filter (where outcome = 'passed') as passed from runs where source_format = 'swe-bench'",
        ),
      ).toEqual([{ n: entries, passed }]);
    });

    it('keeps a step and its tool calls for the trajectories it loads', async () => {
      const [row] = await sql(
        "select count(*) as runs, sum(step_count) as steps, sum(tool_call_count) as calls from runs where source_format in ('swe-agent', 'atif')",
      );
      expect(Number(row?.steps)).toBeGreaterThan(1000);
      const [joined] = await sql('select count(*) as n from tool_calls t join steps s using (run_id, step)');
      expect(joined?.n).toBeGreaterThan(0);
    });

    it('adds nothing when the same traces are ingested again', async () => {
      const again = await runCli(['--db', db, '--json', 'ingest', sharedTracesDir]);
      expect(JSON.parse(again.stdout).totals).toMatchObject({ appended: 0, rejects: 0 });
      const [count] = await sql('select count(*) as n from events');
      expect(count?.n).toBe(first.totals.appended);
    });
  },
);
