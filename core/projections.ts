import type { Database } from './database.js';
import { PROJECTION_TABLES } from './schema.js';

/**
 * Projections are folds of the log, recomputed per run: a batch that touches a run replaces that run's rows with
 * what all of its events say. Incremental maintenance and a full rebuild therefore run the same statements and give
 * identical tables; only the set of runs differs (`affected_runs` holds it). Each JSON payload is parsed once, with
 * `json_transform` into a typed struct, and only for the event types a table reads.
 */

const EXCERPT_CHARS = 2000;

/** Every event of an affected run has `seq >= $1`, which lets DuckDB skip older row groups by their min/max. */
const AFFECTED = 'seq >= $1 AND run_id IN (SELECT run_id FROM affected_runs)';

const RUNS = `
INSERT INTO runs
WITH scope AS (
  SELECT run_id, min(seq) AS first_seq, max(seq) AS last_seq, min(time) AS first_time, max(time) AS last_time,
         arg_min(source_format, seq) AS source_format, arg_min(source_file, seq) AS source_file
  FROM events WHERE ${AFFECTED} GROUP BY run_id
), started AS (
  SELECT run_id, json_transform(arg_max(data, seq), '{"task":"VARCHAR","dataset":"VARCHAR","model":"VARCHAR","agent":"VARCHAR","agentVersion":"VARCHAR","harnessVersion":"VARCHAR","attempt":"INTEGER","split":"VARCHAR","seed":"BIGINT","trialName":"VARCHAR","parentRunId":"VARCHAR","relation":"VARCHAR"}') AS s
  FROM events WHERE type = 'run-start' AND ${AFFECTED} GROUP BY run_id
), ended AS (
  SELECT run_id, json_transform(arg_max(data, seq), '{"outcome":"VARCHAR","reward":"DOUBLE","failureReason":"VARCHAR","promptTokens":"BIGINT","completionTokens":"BIGINT","costUsd":"DOUBLE","startedAt":"TIMESTAMPTZ","endedAt":"TIMESTAMPTZ"}') AS s
  FROM events WHERE type = 'run-end' AND ${AFFECTED} GROUP BY run_id
), verified AS (
  SELECT run_id, CAST(arg_max(data, seq)->>'reward' AS DOUBLE) AS reward
  FROM events WHERE type = 'run-verify' AND ${AFFECTED} GROUP BY run_id
), stepped AS (
  SELECT run_id, count(DISTINCT s.step) AS step_count, sum(s.promptTokens) AS prompt_tokens,
         sum(s.completionTokens) AS completion_tokens, sum(s.costUsd) AS cost_usd,
         arg_min(s.model, seq) FILTER (WHERE s.model IS NOT NULL) AS model
  FROM (SELECT run_id, seq, json_transform(data, '{"step":"INTEGER","model":"VARCHAR","promptTokens":"BIGINT","completionTokens":"BIGINT","costUsd":"DOUBLE"}') AS s
        FROM events WHERE type = 'step-create' AND ${AFFECTED})
  GROUP BY run_id
), called AS (
  SELECT run_id, count(DISTINCT id) AS tool_call_count FROM events WHERE type = 'tool-call' AND ${AFFECTED} GROUP BY run_id
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

const STEPS = `
INSERT INTO steps
SELECT run_id, s.step, s.role, s.message, s.reasoning, s.model, s.promptTokens, s.completionTokens, s.cachedTokens,
       s.costUsd, time, seq
FROM (
  SELECT run_id, time, seq,
         json_transform(data, '{"step":"INTEGER","role":"VARCHAR","message":"VARCHAR","reasoning":"VARCHAR","model":"VARCHAR","promptTokens":"BIGINT","completionTokens":"BIGINT","cachedTokens":"BIGINT","costUsd":"DOUBLE"}') AS s
  FROM events WHERE type = 'step-create' AND ${AFFECTED}
)
QUALIFY row_number() OVER (PARTITION BY run_id, struct_extract(s, 'step') ORDER BY seq DESC) = 1`;

const TOOL_CALLS = `
INSERT INTO tool_calls
WITH calls AS (
  SELECT run_id, seq, data->'arguments' AS arguments,
         json_transform(data, '{"step":"INTEGER","callId":"VARCHAR","tool":"VARCHAR","command":"VARCHAR"}') AS c
  FROM events WHERE type = 'tool-call' AND ${AFFECTED}
  QUALIFY row_number() OVER (PARTITION BY run_id, struct_extract(c, 'callId') ORDER BY seq DESC) = 1
), results AS (
  SELECT run_id, seq, json_transform(data, '{"callId":"VARCHAR","exitCode":"INTEGER","output":"VARCHAR","error":"VARCHAR"}') AS r
  FROM events WHERE type = 'tool-result' AND ${AFFECTED}
  QUALIFY struct_extract(r, 'callId') IS NOT NULL
    AND row_number() OVER (PARTITION BY run_id, struct_extract(r, 'callId') ORDER BY seq DESC) = 1
)
SELECT calls.run_id, calls.c.step, calls.c.callId, calls.c.tool, calls.arguments, calls.c.command, results.r.exitCode,
       left(results.r.output, ${EXCERPT_CHARS}), length(results.r.output), results.r.error, calls.seq, results.seq
FROM calls LEFT JOIN results ON results.run_id = calls.run_id AND results.r.callId = calls.c.callId`;

const VERIFICATIONS = `
INSERT INTO verifications
WITH latest AS (
  SELECT run_id, arg_max(data, seq) AS data, max(seq) AS seq
  FROM events WHERE type = 'run-verify' AND ${AFFECTED} GROUP BY run_id
)
SELECT latest.run_id, t.test.name, t.test.status, t.test.message, t.test.durationMs, CAST(latest.data->>'reward' AS DOUBLE),
       latest.seq
FROM latest,
     unnest(json_transform(latest.data->'tests', '[{"name":"VARCHAR","status":"VARCHAR","message":"VARCHAR","durationMs":"DOUBLE"}]')) AS t(test)`;

const INSERTS = { runs: RUNS, steps: STEPS, tool_calls: TOOL_CALLS, verifications: VERIFICATIONS } as const;

/** Re-derives the projection rows of every run that has an event after `afterSeq`. Call inside the append transaction. */
export async function updateProjections(database: Database, afterSeq: number): Promise<number> {
  await database.run(
    'CREATE OR REPLACE TEMP TABLE affected_runs AS SELECT DISTINCT run_id FROM events WHERE seq > $1',
    [afterSeq],
  );
  const affected = Number((await database.one<{ n: bigint }>('SELECT count(*) AS n FROM affected_runs'))?.n ?? 0);
  if (affected > 0) {
    const firstSeq = await firstSeqOfRuns(database, 'affected_runs', afterSeq + 1);
    for (const table of PROJECTION_TABLES) {
      await database.run(`DELETE FROM ${table} WHERE run_id IN (SELECT run_id FROM affected_runs)`);
      await database.run(INSERTS[table], [firstSeq]);
    }
  }
  await database.run('DROP TABLE affected_runs');
  return affected;
}

/** Recomputes every projection from the whole log. The result equals the incrementally maintained tables. */
export async function rebuildProjections(database: Database): Promise<number> {
  return database.transaction(async () => {
    for (const table of PROJECTION_TABLES) await database.run(`DELETE FROM ${table}`);
    return updateProjections(database, -1);
  });
}

/**
 * The lowest sequence number of any event of the runs listed in `table`: the `runs` projection knows it for runs
 * already in the log, and events of runs it does not know yet come after `fallback`. Every run that has an event
 * has a `runs` row, so this holds.
 */
export async function firstSeqOfRuns(database: Database, table: string, fallback: number): Promise<number> {
  const row = await database.one<{ seq: bigint | null }>(
    `SELECT min(first_seq) AS seq FROM runs WHERE run_id IN (SELECT run_id FROM ${table})`,
  );
  return Math.min(fallback, row?.seq === null || row?.seq === undefined ? fallback : Number(row.seq));
}
