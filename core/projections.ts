import type { Database } from './database.js';
import { PROJECTION_TABLES, type ProjectionTable, RUN_EVENT_TYPES_SQL } from './schema.js';

/**
 * Projections are folds of the log, recomputed per run: a batch that touches a run replaces that run's rows with
 * what all of its events say. Incremental maintenance and a full rebuild therefore run the same statements and give
 * identical tables; only the relation they read differs. Each JSON payload is parsed once per table, with
 * `json_transform` into a typed struct, and only for the event types that table reads.
 */

const EXCERPT_CHARS = 2000;

function runsInsert(source: string): string {
  return `
INSERT INTO runs
WITH scope AS (
  SELECT run_id, min(seq) AS first_seq, max(seq) AS last_seq, min(time) AS first_time, max(time) AS last_time,
         arg_min(source_format, seq) AS source_format, arg_min(source_file, seq) AS source_file
  FROM ${source} WHERE type IN (${RUN_EVENT_TYPES_SQL}) GROUP BY run_id
), started AS (
  SELECT run_id, json_transform(arg_max(data, seq), '{"task":"VARCHAR","dataset":"VARCHAR","model":"VARCHAR","agent":"VARCHAR","agentVersion":"VARCHAR","harnessVersion":"VARCHAR","attempt":"INTEGER","split":"VARCHAR","seed":"BIGINT","trialName":"VARCHAR","parentRunId":"VARCHAR","relation":"VARCHAR"}') AS s
  FROM ${source} WHERE type = 'run-start' GROUP BY run_id
), ended AS (
  SELECT run_id, json_transform(arg_max(data, seq), '{"outcome":"VARCHAR","reward":"DOUBLE","failureReason":"VARCHAR","promptTokens":"BIGINT","completionTokens":"BIGINT","costUsd":"DOUBLE","startedAt":"TIMESTAMPTZ","endedAt":"TIMESTAMPTZ"}') AS s
  FROM ${source} WHERE type = 'run-end' GROUP BY run_id
), verified AS (
  SELECT run_id, CAST(arg_max(data, seq)->>'reward' AS DOUBLE) AS reward
  FROM ${source} WHERE type = 'run-verify' GROUP BY run_id
), stepped AS (
  SELECT run_id, count(DISTINCT s.step) AS step_count, sum(s.promptTokens) AS prompt_tokens,
         sum(s.completionTokens) AS completion_tokens, sum(s.costUsd) AS cost_usd,
         arg_min(s.model, seq) FILTER (WHERE s.model IS NOT NULL) AS model
  FROM (SELECT run_id, seq, json_transform(data, '{"step":"INTEGER","model":"VARCHAR","promptTokens":"BIGINT","completionTokens":"BIGINT","costUsd":"DOUBLE"}') AS s
        FROM ${source} WHERE type = 'step-create')
  GROUP BY run_id
), called AS (
  -- The log holds an event id once per run, so each tool-call event is a call of its own.
  SELECT run_id, count(*) AS tool_call_count FROM ${source} WHERE type = 'tool-call' GROUP BY run_id
)
SELECT
  scope.run_id, scope.source_format, scope.source_file,
  started.s.dataset, started.s.task, coalesce(started.s.model, stepped.model), started.s.agent, started.s.agentVersion,
  started.s.harnessVersion, started.s.attempt, started.s.split, started.s.seed, started.s.trialName,
  started.s.parentRunId, started.s.relation,
  coalesce(ended.s.outcome, 'unfinished'),
  coalesce(ended.s.reward, verified.reward),
  ended.s.failureReason,
  coalesce(ended.s.promptTokens, stepped.prompt_tokens),
  coalesce(ended.s.completionTokens, stepped.completion_tokens),
  coalesce(ended.s.costUsd, stepped.cost_usd),
  coalesce(ended.s.startedAt, scope.first_time),
  coalesce(ended.s.endedAt, scope.last_time),
  coalesce(stepped.step_count, 0), coalesce(called.tool_call_count, 0),
  scope.first_seq, scope.last_seq
FROM scope
LEFT JOIN started USING (run_id)
LEFT JOIN ended USING (run_id)
LEFT JOIN verified USING (run_id)
LEFT JOIN stepped USING (run_id)
LEFT JOIN called USING (run_id)`;
}

/**
 * One row per step, from the latest event of that step (`latest`); without it, one row per event, which is the same
 * where the source logs no step twice (see `insertProjections`).
 */
function stepsInsert(source: string, latest: boolean): string {
  return `
INSERT INTO steps
SELECT run_id, s.step, s.role, s.message, s.reasoning, s.model, s.promptTokens, s.completionTokens, s.cachedTokens,
       s.costUsd, time, seq
FROM (
  SELECT run_id, time, seq,
         json_transform(data, '{"step":"INTEGER","role":"VARCHAR","message":"VARCHAR","reasoning":"VARCHAR","model":"VARCHAR","promptTokens":"BIGINT","completionTokens":"BIGINT","cachedTokens":"BIGINT","costUsd":"DOUBLE"}') AS s
  FROM ${source} WHERE type = 'step-create'
)
${latest ? `QUALIFY row_number() OVER (PARTITION BY run_id, struct_extract(s, 'step') ORDER BY seq DESC) = 1` : ''}`;
}

/**
 * The latest call and the latest result per call id (`latest`); `arguments` is read in the same `json_transform` as
 * the other fields, which writes it back as `data->'arguments'` does. `arg_max_null` keeps the row with the highest
 * `seq` even where its struct is NULL, like `row_number() OVER (… ORDER BY seq DESC) = 1`, and costs less than the
 * window. Without `latest`, every call joined with every result of its id, which is the same where the source repeats
 * no call id (see `insertProjections`). Results without a call id never match the join's equality. The rows are
 * written in call order: a join's output arrives from every thread in pieces, which fill row groups in part, and the
 * next checkpoint rewrites such row groups to merge them (about a fifth of a second per million events).
 */
function toolCallsInsert(source: string, latest: boolean): string {
  const call = `json_transform(data, '{"step":"INTEGER","callId":"VARCHAR","tool":"VARCHAR","command":"VARCHAR","arguments":"JSON"}')`;
  const result = `json_transform(data, '{"callId":"VARCHAR","exitCode":"INTEGER","output":"VARCHAR","error":"VARCHAR"}')`;
  const calls = latest
    ? `SELECT run_id, arg_max_null(c, seq) AS c, max(seq) AS seq
     FROM (SELECT run_id, seq, ${call} AS c FROM ${source} WHERE type = 'tool-call')
     GROUP BY run_id, c.callId`
    : `SELECT run_id, ${call} AS c, seq FROM ${source} WHERE type = 'tool-call'`;
  const results = latest
    ? `SELECT run_id, arg_max_null(r, seq) AS r, max(seq) AS seq
     FROM (SELECT run_id, seq, ${result} AS r FROM ${source} WHERE type = 'tool-result')
     GROUP BY run_id, r.callId`
    : `SELECT run_id, ${result} AS r, seq FROM ${source} WHERE type = 'tool-result'`;
  return `
INSERT INTO tool_calls
WITH calls AS (
  ${calls}
), results AS (
  ${results}
)
SELECT calls.run_id, calls.c.step, calls.c.callId, calls.c.tool, calls.c.arguments, calls.c.command, results.r.exitCode,
       left(results.r.output, ${EXCERPT_CHARS}), length(results.r.output), results.r.error, calls.seq, results.seq
FROM calls LEFT JOIN results ON results.run_id = calls.run_id AND results.r.callId = calls.c.callId
ORDER BY calls.seq`;
}

function verificationsInsert(source: string): string {
  return `
INSERT INTO verifications
WITH latest AS (
  SELECT run_id, arg_max(data, seq) AS data, max(seq) AS seq
  FROM ${source} WHERE type = 'run-verify' GROUP BY run_id
)
SELECT latest.run_id, t.test.name, t.test.status, t.test.message, t.test.durationMs, CAST(latest.data->>'reward' AS DOUBLE),
       latest.seq
FROM latest,
     unnest(json_transform(latest.data->'tests', '[{"name":"VARCHAR","status":"VARCHAR","message":"VARCHAR","durationMs":"DOUBLE"}]')) AS t(test)`;
}

/**
 * How each table is derived from a source. The keyed tables hold one row per key (a run's step, a run's call id);
 * their builder takes `latest`: pick the latest event per key, or take every event as the latest of its key, which
 * gives the same rows unless the source repeats a key, and then shows as two rows with one key.
 */
type Projection =
  | { insert: (source: string) => string }
  | { insert: (source: string, latest: boolean) => string; key: string; seq: string };

const PROJECTIONS: Record<ProjectionTable, Projection> = {
  runs: { insert: runsInsert },
  steps: { insert: stepsInsert, key: 'run_id, step', seq: 'seq' },
  tool_calls: { insert: toolCallsInsert, key: 'run_id, call_id', seq: 'call_seq' },
  verifications: { insert: verificationsInsert },
};

/**
 * Relations that hold every event of the runs they mention, with the columns of `events`: the whole log, the events
 * after a sequence number `$1`, or the events from `$1` on of the runs listed in the temporary table `affected_runs`
 * (`$1` at most the lowest sequence number of their events, which lets DuckDB skip older row groups by their min/max).
 */
const SOURCES = {
  log: 'events',
  after: '(SELECT * FROM events WHERE seq > $1)',
  affected: '(SELECT * FROM events WHERE seq >= $1 AND run_id IN (SELECT run_id FROM affected_runs))',
} as const;

/**
 * The projection rows of the runs a source holds, once they are inserted: all rows; the rows of events after `$1`
 * (the runs are new, so all their rows); the rows of the affected runs.
 */
function rowsOfSource(source: keyof typeof SOURCES, seqColumn: string): string {
  if (source === 'log') return 'true';
  if (source === 'after') return `${seqColumn} > $1`;
  return 'run_id IN (SELECT run_id FROM affected_runs)';
}

/** The `selfharness_meta` key of the highest sequence number whose event the projections reflect. */
const PROJECTED_SEQ = 'projected_seq';

/**
 * Derives the projection rows of every run in a source. The tables must hold no rows for those runs yet (they are new,
 * or their rows were just deleted). Picking the latest event per step and per call id costs a window or a grouping
 * over every row, and most sources never repeat a key, so each keyed table is first derived taking every event as the
 * latest; only where that gives two rows with one key are the source's rows derived again, the full way. Both give
 * the same rows whenever no key repeats, so the result is the same as always taking the full way.
 */
async function insertProjections(database: Database, source: keyof typeof SOURCES, values: number[] = []) {
  for (const table of PROJECTION_TABLES) {
    const projection = PROJECTIONS[table];
    if (!('key' in projection)) {
      await database.run(projection.insert(SOURCES[source]), values);
      continue;
    }
    await database.run(projection.insert(SOURCES[source], false), values);
    const rows = rowsOfSource(source, projection.seq);
    const rowValues = source === 'after' ? values : [];
    const repeated = await database.one(
      `SELECT 1 AS repeated FROM ${table} WHERE ${rows} GROUP BY ${projection.key} HAVING count(*) > 1 LIMIT 1`,
      rowValues,
    );
    if (repeated === undefined) continue;
    await database.run(`DELETE FROM ${table} WHERE ${rows}`, rowValues);
    await database.run(projection.insert(SOURCES[source], true), values);
  }
}

/**
 * Replaces the projection rows of the runs listed in the temporary table `affected_runs`, all of whose events have
 * `seq >= firstSeq`. Call inside a transaction.
 */
async function replaceProjections(database: Database, firstSeq: number): Promise<void> {
  for (const table of PROJECTION_TABLES) {
    await database.run(`DELETE FROM ${table} WHERE run_id IN (SELECT run_id FROM affected_runs)`);
  }
  await insertProjections(database, 'affected', [firstSeq]);
}

/**
 * Re-derives the projection rows of every run that has an event after `afterSeq`. When none of those runs has an
 * earlier event, they are new to the projections and only the events after `afterSeq` are read. Call inside a
 * transaction.
 */
export async function updateProjections(database: Database, afterSeq: number): Promise<number> {
  await database.run(
    'CREATE OR REPLACE TEMP TABLE affected_runs AS SELECT DISTINCT run_id FROM events WHERE seq > $1',
    [afterSeq],
  );
  const affected = Number((await database.one<{ n: bigint }>('SELECT count(*) AS n FROM affected_runs'))?.n ?? 0);
  if (affected > 0) {
    const unprojectedAfter = Math.min(afterSeq, await projectedSeq(database));
    const firstSeq = await firstSeqOfRuns(database, 'affected_runs', unprojectedAfter + 1);
    if (firstSeq > afterSeq) await insertProjections(database, 'after', [afterSeq]);
    else await replaceProjections(database, firstSeq);
  }
  await database.run('DROP TABLE affected_runs');
  return affected;
}

/**
 * Brings the projections up to date with the log: derives the rows of every run that has events the projections do
 * not reflect yet, and records how far they reach, in the caller's transaction. An import appends its batches first
 * and calls this once at the end, which costs far less than re-deriving the runs of every batch; if it never gets
 * there (a crash), the next `EventLog.open` does it. Returns the number of runs derived.
 */
export async function projectPendingEvents(database: Database): Promise<number> {
  const projected = await projectedSeq(database);
  const last = Number((await database.one<{ seq: bigint | null }>('SELECT max(seq) AS seq FROM events'))?.seq ?? 0);
  if (last <= projected) return 0;
  const runs = await updateProjections(database, projected);
  await setProjectedSeq(database, last);
  return runs;
}

/** Recomputes every projection from the whole log. The result equals the incrementally maintained tables. */
export async function rebuildProjections(database: Database): Promise<number> {
  return database.transaction(async () => {
    for (const table of PROJECTION_TABLES) await database.run(`DELETE FROM ${table}`);
    await insertProjections(database, 'log');
    const last = Number((await database.one<{ seq: bigint | null }>('SELECT max(seq) AS seq FROM events'))?.seq ?? 0);
    await setProjectedSeq(database, last);
    return Number((await database.one<{ n: bigint }>('SELECT count(*) AS n FROM runs'))?.n ?? 0);
  });
}

/**
 * The highest sequence number whose event the projections reflect. A log written before this was recorded kept its
 * projections current with every append, so it starts at the last event.
 */
async function projectedSeq(database: Database): Promise<number> {
  const row = await database.one<{ value: string }>('SELECT value FROM selfharness_meta WHERE key = $1', [
    PROJECTED_SEQ,
  ]);
  if (row) return Number(row.value);
  const last = Number((await database.one<{ seq: bigint | null }>('SELECT max(seq) AS seq FROM events'))?.seq ?? 0);
  await database.run('INSERT INTO selfharness_meta VALUES ($1, $2)', [PROJECTED_SEQ, String(last)]);
  return last;
}

async function setProjectedSeq(database: Database, seq: number): Promise<void> {
  await database.run('UPDATE selfharness_meta SET value = $2 WHERE key = $1', [PROJECTED_SEQ, String(seq)]);
}

/**
 * The lowest sequence number of any event of the runs listed in `table`: the `runs` projection knows it for runs
 * whose events it reflects, and the other events come after `fallback - 1` (the projected sequence number at most).
 */
async function firstSeqOfRuns(database: Database, table: string, fallback: number): Promise<number> {
  const row = await database.one<{ seq: bigint | null }>(
    `SELECT min(first_seq) AS seq FROM runs WHERE run_id IN (SELECT run_id FROM ${table})`,
  );
  return Math.min(fallback, row?.seq === null || row?.seq === undefined ? fallback : Number(row.seq));
}
