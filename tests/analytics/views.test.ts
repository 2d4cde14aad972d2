import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DETECTOR_MACROS } from '../../analytics/detectors.js';
import { installAnalytics, prepareAnalytics } from '../../analytics/schema.js';
import { VIEW_NAMES } from '../../analytics/views.js';
import { EventLog, type TraceEvent } from '../../core/index.js';
import { sampleRun } from '../support/events.js';

const readme = readFileSync(resolve(import.meta.dirname, '../../analytics/README.md'), 'utf8');

interface DocumentedRelation {
  name: string;
  kind: 'view' | 'table';
  columns: { name: string; type: string }[] | undefined;
}

/** Reads the reference page: each `### \`name\` (kind)` section and its column table, or "Same columns as" / "first N columns of". */
function documentedRelations(): DocumentedRelation[] {
  const sections = readme.split(/^### /m).slice(1);
  const relations: DocumentedRelation[] = [];
  for (const section of sections) {
    const heading = /^`(\w+)` \((view|table)\)/.exec(section);
    if (!heading?.[1] || !heading[2]) continue;
    const rows = [...section.matchAll(/^\| `(\w+)` \| ([A-Z][A-Z0-9[\] ]*) \|/gm)].map((row) => ({
      name: row[1] ?? '',
      type: (row[2] ?? '').replace('TIMESTAMPTZ', 'TIMESTAMP WITH TIME ZONE'),
    }));
    relations.push({
      name: heading[1],
      kind: heading[2] as 'view' | 'table',
      columns: rows.length > 0 ? rows : undefined,
    });
  }
  for (const relation of relations) {
    if (relation.columns) continue;
    const section = sections.find((text) => text.startsWith(`\`${relation.name}\``)) ?? '';
    const same = /Same columns as `(\w+)`/.exec(section);
    const first = /first (\d+) columns of `(\w+)`/.exec(section);
    const source = (name: string | undefined) => relations.find((other) => other.name === name)?.columns;
    if (same) relation.columns = source(same[1]);
    else if (first) relation.columns = source(first[2])?.slice(0, Number(first[1]));
  }
  return relations;
}

function diagnosis(runId: string, seq: number, promptVersion: string, mechanism: string): TraceEvent {
  return {
    id: `diagnosis:${runId}:${promptVersion}:${seq}`,
    runId,
    type: 'diagnosis-create',
    data: {
      promptVersion,
      model: 'judge',
      terminalCause: `cause ${seq}`,
      criticality: 'root-cause',
      mechanism,
      evidenceSteps: [1, 2],
      reasoning: 'the build never ran',
    },
  };
}

describe('analyst views', () => {
  let folder: string;
  let log: EventLog;

  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'selfharness-views-'));
    log = await EventLog.open(join(folder, 'views.duckdb'));
    await installAnalytics(log.database);
    const failing = (runId: string, model: string) =>
      sampleRun(runId, 'failed').map((event) =>
        event.type === 'run-start' ? { ...event, data: { ...event.data, model } } : event,
      );
    // model-a: 5 failed runs, 2 of them cost-limited; model-b: 1 failed run; plus a passing and an invalid run.
    const events: TraceEvent[] = [];
    for (let index = 0; index < 5; index++) {
      events.push(
        ...failing(`a-${index}`, 'model-a').map((event) =>
          event.type === 'run-end' && index < 2
            ? { ...event, data: { ...event.data, failureReason: 'exit_cost' } }
            : event,
        ),
      );
    }
    events.push(...failing('b-0', 'model-b'), ...sampleRun('ok-0', 'passed'), ...sampleRun('bad-0', 'invalid'));
    events.push(
      diagnosis('a-0', 1, 'v1', 'old'),
      diagnosis('a-0', 2, 'v1', 'budget-exhaustion'),
      diagnosis('a-0', 3, 'v2', 'other'),
    );
    await log.appendEvents(events);
  });
  afterAll(() => log.close());

  it('documents every view and every column it has, and every documented relation and column exists', async () => {
    const documented = documentedRelations();
    const documentedViews = documented.filter((relation) => relation.kind === 'view').map((relation) => relation.name);
    const existing = await log.query<{ view_name: string }>(
      "SELECT view_name FROM duckdb_views() WHERE NOT internal AND schema_name = 'main' ORDER BY view_name",
    );
    expect(existing.map((row) => row.view_name).sort()).toEqual([...documentedViews].sort());
    expect([...VIEW_NAMES].sort()).toEqual([...documentedViews].sort());
    for (const relation of documented) {
      const actual = await log.query<{ column_name: string; column_type: string }>(
        `DESCRIBE SELECT * FROM ${relation.name}`,
      );
      if (relation.columns) {
        expect([
          relation.name,
          actual.map((column) => ({ name: column.column_name, type: column.column_type })),
        ]).toEqual([relation.name, relation.columns]);
      }
    }
    expect(documented.filter((relation) => relation.columns === undefined).map((relation) => relation.name)).toEqual([
      'weakness_clusters',
      'weakness_cluster_members',
    ]);
  });

  it('documents every detector macro, and each exists', async () => {
    const macros = await log.query<{ name: string }>(
      "SELECT DISTINCT function_name AS name FROM duckdb_functions() WHERE function_type = 'table_macro' AND function_name LIKE 'detect%'",
    );
    const names = macros.map((row) => row.name).sort();
    expect(names).toEqual(DETECTOR_MACROS.map((macro) => macro.name).sort());
    for (const name of names) expect(readme).toContain(`\`${name}(`);
  });

  it('keeps invalid runs out of failed_runs and derives the summary columns', async () => {
    const failed = await log.query<{ run_id: string }>('SELECT run_id FROM failed_runs ORDER BY run_id');
    expect(failed.map((row) => row.run_id)).toEqual(['a-0', 'a-1', 'a-2', 'a-3', 'a-4', 'b-0']);
    const [summary] = await log.query('SELECT * FROM run_summary WHERE run_id = $1', ['a-0']);
    expect(summary).toMatchObject({
      is_valid: true,
      is_failed: true,
      is_passed: false,
      duration_seconds: 3,
      total_tokens: 242n,
      failed_tests: 1,
      passed_tests: 0,
      failed_test_names: ['test_output'],
    });
  });

  it('joins steps and tool calls with their run, and classifies the calls', async () => {
    const steps = await log.query(
      'SELECT step, tool_calls, task, run_model, outcome FROM step_view WHERE run_id = $1 ORDER BY step',
      ['a-0'],
    );
    expect(steps).toEqual([
      { step: 1, tool_calls: 1, task: 'make-output', run_model: 'model-a', outcome: 'failed' },
      { step: 2, tool_calls: 1, task: 'make-output', run_model: 'model-a', outcome: 'failed' },
    ]);
    const calls = await log.query(
      'SELECT step, command_key, action_kind, failure_kind, is_failure, failure_excerpt, model FROM tool_call_view WHERE run_id = $1 ORDER BY step',
      ['a-0'],
    );
    expect(calls).toEqual([
      {
        step: 1,
        command_key: 'make',
        action_kind: 'other',
        failure_kind: 'error',
        is_failure: true,
        failure_excerpt: 'make: *** No targets. Stop.',
        model: 'model-a',
      },
      {
        step: 2,
        command_key: 'make all',
        action_kind: 'other',
        failure_kind: null,
        is_failure: false,
        failure_excerpt: null,
        model: 'model-a',
      },
    ]);
  });

  it('shows the latest diagnosis per run, prompt version and model', async () => {
    const rows = await log.query(
      'SELECT run_id, prompt_version, model, terminal_cause, criticality, mechanism, evidence_steps, reasoning FROM diagnoses ORDER BY prompt_version',
    );
    expect(rows).toEqual([
      {
        run_id: 'a-0',
        prompt_version: 'v1',
        model: 'judge',
        terminal_cause: 'cause 2',
        criticality: 'root-cause',
        mechanism: 'budget-exhaustion',
        evidence_steps: [1, 2],
        reasoning: 'the build never ran',
      },
      expect.objectContaining({ prompt_version: 'v2', terminal_cause: 'cause 3' }),
    ]);
  });

  it('profiles each model with rates and Wilson intervals that can be checked by hand', async () => {
    const rows = await log.query<{
      failed_runs: number;
      runs_with_mechanism: number;
      rate: number;
      rate_low: number;
      rate_high: number;
    }>("SELECT * FROM model_profiles WHERE model = 'model-a' AND mechanism = 'budget-exhaustion'");
    expect(rows).toHaveLength(1);
    const [row] = rows;
    const n = 5;
    const k = 2;
    const z = 1.959963984540054;
    const p = k / n;
    const center = (p + (z * z) / (2 * n)) / (1 + (z * z) / n);
    const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / (1 + (z * z) / n);
    expect(row).toMatchObject({ failed_runs: 5, runs_with_mechanism: 2, rate: 0.4 });
    expect(row?.rate_low).toBeCloseTo(center - half, 10);
    expect(row?.rate_high).toBeCloseTo(center + half, 10);
    const grid = await log.query<{ model: string; n: bigint }>(
      'SELECT model, count(*) AS n FROM model_profiles GROUP BY model ORDER BY model',
    );
    expect(grid.map((entry) => [entry.model, Number(entry.n)])).toEqual([
      ['model-a', 9],
      ['model-b', 9],
    ]);
  });

  it('gives a read-only reader of a database without the views temporary copies', async () => {
    const bare = join(folder, 'bare.duckdb');
    const writer = await EventLog.open(bare);
    await writer.appendEvents(sampleRun('r-1', 'failed'));
    writer.close();
    const reader = await EventLog.open(bare, { readOnly: true });
    try {
      await expect(reader.query('SELECT count(*) FROM failed_runs')).rejects.toThrow(/failed_runs/);
      await prepareAnalytics(reader.database);
      const [row] = await reader.query<{ n: bigint }>('SELECT count(*) AS n FROM failed_runs');
      expect(Number(row?.n)).toBe(1);
      const clusters = await reader.query('SELECT * FROM weakness_clusters_ranked');
      expect(clusters).toEqual([]);
    } finally {
      reader.close();
    }
    const copy = join(folder, 'copy.duckdb');
    copyFileSync(bare, copy);
    const persisted = await EventLog.open(copy, { readOnly: true });
    try {
      await expect(persisted.query('SELECT count(*) FROM run_summary')).rejects.toThrow(/run_summary/);
    } finally {
      persisted.close();
    }
  });
});
