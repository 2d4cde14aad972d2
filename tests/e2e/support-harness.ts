import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { type CliResult, runCli } from '../support/cli.js';

/**
 * Helpers for the end-to-end checks of the harness: everything goes through the real `selfharness` command line (in
 * its own process) and the real bubblewrap sandbox, into a database in a temporary folder.
 */

/** A temporary folder for databases and spec files; `remove()` deletes it. */
export function scratchFolder(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `selfharness-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Runs `selfharness --db DATABASE ARGS…`; fails the test with the command's stderr when it exits with another code. */
export async function selfharness(
  database: string,
  args: readonly string[],
  options: { env?: Record<string, string>; expectCode?: number } = {},
): Promise<CliResult> {
  const result = await runCli(['--db', database, ...args], options.env);
  const expected = options.expectCode ?? 0;
  if (result.code !== expected) {
    throw new Error(
      `selfharness ${args.join(' ')} exited with ${result.code}, not ${expected}:\n${result.stderr}\n${result.stdout}`,
    );
  }
  return result;
}

/** One trial as `selfharness run --json` reports it. */
export interface TrialJson {
  runId: string;
  task: string;
  split?: string;
  attempt: number;
  outcome: 'passed' | 'failed' | 'invalid' | 'unfinished';
  failureReason?: string;
  detail?: string;
}

/** A summary row as `selfharness run --json` reports it. */
export interface SummaryRowJson {
  split: string;
  trials: number;
  passed: number;
  failed: number;
  invalid: number;
  unfinished: number;
  passRate: number | null;
}

export interface RunJson {
  database: string;
  batchId: string;
  model: string;
  harnessVersion: string | null;
  interrupted: boolean;
  summary: { rows: SummaryRowJson[]; overall: SummaryRowJson };
  results: TrialJson[];
}

/** `selfharness run … --json`, checked to have run in bubblewrap sandboxes with no invalid trial. */
export async function runTrialsCli(
  database: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<RunJson> {
  const result = await selfharness(database, ['run', ...args, '--json'], { env });
  expect(result.stderr).toContain('in bubblewrap sandboxes');
  const output = JSON.parse(result.stdout) as RunJson;
  expect(output.results.filter((trial) => trial.outcome === 'invalid')).toEqual([]);
  return output;
}

/** Rows of a read-only query through `selfharness --json sql`, as an analyst would run it. */
export async function sql<Row>(database: string, query: string): Promise<Row[]> {
  const result = await selfharness(database, ['--json', 'sql', query]);
  return JSON.parse(result.stdout) as Row[];
}

/**
 * Registers a harness version through the command line: exports the default spec, gives it `middleware`, and imports
 * it with `--parent default`. Returns the new version id.
 */
export async function importHarnessWithMiddleware(
  database: string,
  folder: string,
  name: string,
  middleware: readonly Record<string, unknown>[],
): Promise<string> {
  const base = join(folder, 'default.json');
  await selfharness(database, ['harness', 'export', 'default', '--out', base]);
  const spec = JSON.parse(readFileSync(base, 'utf8')) as { middleware: unknown[] };
  expect(spec.middleware).toEqual([]);
  spec.middleware = [...middleware];
  const file = join(folder, `${name}.json`);
  writeFileSync(file, JSON.stringify(spec, null, 2));
  const imported = await selfharness(database, [
    '--json',
    'harness',
    'import',
    file,
    '--parent',
    'default',
    '--description',
    name,
  ]);
  const { versionId, parentId, created } = JSON.parse(imported.stdout) as {
    versionId: string;
    parentId: string | null;
    created: boolean;
  };
  expect(created).toBe(true);
  expect(parentId).toMatch(/^[0-9a-f]{12}$/);
  return versionId;
}

/** How many runs of each group show each mechanism, with the group's run count. */
export interface MechanismCount {
  group: string;
  mechanism: string;
  runs: number;
}

/**
 * Counts runs per group (a SQL expression over the run's columns, e.g. `model`) and mechanism, as the detectors find
 * them. With `includePassing`, every valid run is mined (`detect_mechanisms(include_passing := true)`); otherwise only
 * the failed runs (the `detected_mechanisms` view).
 */
export async function mechanismCounts(
  database: string,
  group: string,
  includePassing: boolean,
): Promise<MechanismCount[]> {
  const source = includePassing ? 'detect_mechanisms(include_passing := true)' : 'detected_mechanisms';
  return sql<MechanismCount>(
    database,
    `SELECT ${group} AS "group", mechanism, CAST(count(DISTINCT run_id) AS INTEGER) AS runs
     FROM ${source} GROUP BY ALL ORDER BY 1, 3 DESC, 2`,
  );
}

/** Runs per group, of the selfharness task runs in the log (all outcomes). */
export async function runCounts(
  database: string,
  group: string,
): Promise<{ group: string; runs: number; passed: number; failed: number }[]> {
  return sql(
    database,
    `SELECT ${group} AS "group", CAST(count(*) AS INTEGER) AS runs,
            CAST(count(*) FILTER (WHERE outcome = 'passed') AS INTEGER) AS passed,
            CAST(count(*) FILTER (WHERE outcome = 'failed') AS INTEGER) AS failed
     FROM runs WHERE dataset = 'selfharness-tasks' GROUP BY ALL ORDER BY 1`,
  );
}

/** The share of a group's runs that show a mechanism (0 when none do). */
export function rate(
  counts: readonly MechanismCount[],
  totals: ReadonlyMap<string, number>,
  group: string,
  mechanism: string,
): number {
  const runs = counts.find((row) => row.group === group && row.mechanism === mechanism)?.runs ?? 0;
  const total = totals.get(group) ?? 0;
  return total === 0 ? 0 : runs / total;
}

/** A Markdown table of rates, groups as columns, for the test's output and the README. */
export function rateTable(
  mechanisms: readonly string[],
  groups: readonly string[],
  value: (group: string, mechanism: string) => string,
): string {
  const lines = [`| mechanism | ${groups.join(' | ')} |`, `|---|${groups.map(() => '---:').join('|')}|`];
  for (const mechanism of mechanisms) {
    lines.push(`| ${mechanism} | ${groups.map((group) => value(group, mechanism)).join(' | ')} |`);
  }
  return lines.join('\n');
}
