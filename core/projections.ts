import type { Database } from './database.js';
import { PROJECTION_TABLES } from './schema.js';

/**
 * Projections are folds of the log, recomputed per run: a batch that touches a run replaces that run's rows with
 * what all of its events say. Incremental maintenance and a full rebuild therefore run the same statements and give
 * identical tables; only the set of runs differs (`affected_runs` holds it).
 */

const EXCERPT_CHARS = 2000;

const RUNS = `
INSERT INTO runs
SELECT
  e.run_id,
  arg_min(e.source_format, e.seq),
  arg_min(e.source_file, e.seq),
  arg_max(e.data->>'dataset', e.seq) FILTER (WHERE e.type = 'run-start'),
  arg_max(e.data->>'task', e.seq) FILTER (WHERE e.type = 'run-start'),
  coalesce(arg_max(e.data->>'model', e.seq) FILTER (WHERE e.type = 'run-start'),
           arg_min(e.data->>'model', e.seq) FILTER (WHERE e.type = 'step-create' AND e.data->>'model' IS NOT NULL)),
  arg_max(e.data->>'agent', e.seq) FILTER (WHERE e.type = 'run-start'),
  arg_max(e.data->>'agentVersion', e.seq) FILTER (WHERE e.type = 'run-start'),
  arg_max(e.data->>'harnessVersion', e.seq) FILTER (WHERE e.type = 'run-start'),
  arg_max(CAST(e.data->>'attempt' AS INTEGER), e.seq) FILTER (WHERE e.type = 'run-start'),
  arg_max(e.data->>'split', e.seq) FILTER (WHERE e.type = 'run-start'),
  arg_max(CAST(e.data->>'seed' AS BIGINT), e.seq) FILTER (WHERE e.type = 'run-start'),
  arg_max(e.data->>'trialName', e.seq) FILTER (WHERE e.type = 'run-start'),
  arg_max(e.data->>'parentRunId', e.seq) FILTER (WHERE e.type = 'run-start'),
  arg_max(e.data->>'relation', e.seq) FILTER (WHERE e.type = 'run-start'),
  coalesce(arg_max(e.data->>'outcome', e.seq) FILTER (WHERE e.type = 'run-end'), 'unfinished'),
  coalesce(arg_max(CAST(e.data->>'reward' AS DOUBLE), e.seq) FILTER (WHERE e.type = 'run-end'),
           arg_max(CAST(e.data->>'reward' AS DOUBLE), e.seq) FILTER (WHERE e.type = 'run-verify')),
  arg_max(e.data->>'failureReason', e.seq) FILTER (WHERE e.type = 'run-end'),
  coalesce(arg_max(CAST(e.data->>'promptTokens' AS BIGINT), e.seq) FILTER (WHERE e.type = 'run-end'),
           sum(CAST(e.data->>'promptTokens' AS BIGINT)) FILTER (WHERE e.type = 'step-create')),
  coalesce(arg_max(CAST(e.data->>'completionTokens' AS BIGINT), e.seq) FILTER (WHERE e.type = 'run-end'),
           sum(CAST(e.data->>'completionTokens' AS BIGINT)) FILTER (WHERE e.type = 'step-create')),
  coalesce(arg_max(CAST(e.data->>'costUsd' AS DOUBLE), e.seq) FILTER (WHERE e.type = 'run-end'),
           sum(CAST(e.data->>'costUsd' AS DOUBLE)) FILTER (WHERE e.type = 'step-create')),
  coalesce(arg_max(CAST(e.data->>'startedAt' AS TIMESTAMPTZ), e.seq) FILTER (WHERE e.type = 'run-end'), min(e.time)),
  coalesce(arg_max(CAST(e.data->>'endedAt' AS TIMESTAMPTZ), e.seq) FILTER (WHERE e.type = 'run-end'), max(e.time)),
  count(DISTINCT CAST(e.data->>'step' AS INTEGER)) FILTER (WHERE e.type = 'step-create'),
  count(DISTINCT e.id) FILTER (WHERE e.type = 'tool-call'),
  min(e.seq),
  max(e.seq)
FROM events e
WHERE e.run_id IN (SELECT run_id FROM affected_runs)
GROUP BY e.run_id
HAVING count(*) FILTER (WHERE e.type = 'run-start') > 0`;

const STEPS = `
INSERT INTO steps
SELECT run_id, step, role, message, reasoning, model, prompt_tokens, completion_tokens, cached_tokens, cost_usd, time, seq
FROM (
  SELECT
    e.run_id,
    CAST(e.data->>'step' AS INTEGER) AS step,
    e.data->>'role' AS role,
    e.data->>'message' AS message,
    e.data->>'reasoning' AS reasoning,
    e.data->>'model' AS model,
    CAST(e.data->>'promptTokens' AS BIGINT) AS prompt_tokens,
    CAST(e.data->>'completionTokens' AS BIGINT) AS completion_tokens,
    CAST(e.data->>'cachedTokens' AS BIGINT) AS cached_tokens,
    CAST(e.data->>'costUsd' AS DOUBLE) AS cost_usd,
    e.time,
    e.seq
  FROM events e
  WHERE e.type = 'step-create' AND e.run_id IN (SELECT run_id FROM affected_runs)
  QUALIFY row_number() OVER (PARTITION BY e.run_id, CAST(e.data->>'step' AS INTEGER) ORDER BY e.seq DESC) = 1
)`;

const TOOL_CALLS = `
INSERT INTO tool_calls
WITH calls AS (
  SELECT e.run_id, CAST(e.data->>'step' AS INTEGER) AS step, e.data->>'callId' AS call_id, e.data->>'tool' AS tool,
         e.data->'arguments' AS arguments, e.data->>'command' AS command, e.seq
  FROM events e
  WHERE e.type = 'tool-call' AND e.run_id IN (SELECT run_id FROM affected_runs)
  QUALIFY row_number() OVER (PARTITION BY e.run_id, e.data->>'callId' ORDER BY e.seq DESC) = 1
), results AS (
  SELECT e.run_id, e.data->>'callId' AS call_id, CAST(e.data->>'exitCode' AS INTEGER) AS exit_code,
         e.data->>'output' AS output, e.data->>'error' AS error, e.seq
  FROM events e
  WHERE e.type = 'tool-result' AND e.data->>'callId' IS NOT NULL AND e.run_id IN (SELECT run_id FROM affected_runs)
  QUALIFY row_number() OVER (PARTITION BY e.run_id, e.data->>'callId' ORDER BY e.seq DESC) = 1
)
SELECT c.run_id, c.step, c.call_id, c.tool, c.arguments, c.command, r.exit_code,
       left(r.output, ${EXCERPT_CHARS}), length(r.output), r.error, c.seq, r.seq
FROM calls c LEFT JOIN results r ON r.run_id = c.run_id AND r.call_id = c.call_id`;

const VERIFICATIONS = `
INSERT INTO verifications
WITH latest AS (
  SELECT e.run_id, e.data, e.seq
  FROM events e
  WHERE e.type = 'run-verify' AND e.run_id IN (SELECT run_id FROM affected_runs)
  QUALIFY row_number() OVER (PARTITION BY e.run_id ORDER BY e.seq DESC) = 1
)
SELECT l.run_id, t.test->>'name', t.test->>'status', t.test->>'message', CAST(t.test->>'durationMs' AS DOUBLE),
       CAST(l.data->>'reward' AS DOUBLE), l.seq
FROM latest l, unnest(CAST(json_extract(l.data, '$.tests') AS JSON[])) AS t(test)`;

const INSERTS = { runs: RUNS, steps: STEPS, tool_calls: TOOL_CALLS, verifications: VERIFICATIONS } as const;

/** Re-derives the projection rows of every run that has an event after `afterSeq`. Call inside the append transaction. */
export async function updateProjections(database: Database, afterSeq: number): Promise<number> {
  await database.run('CREATE OR REPLACE TEMP TABLE affected_runs AS SELECT DISTINCT run_id FROM events WHERE seq > $1', [
    afterSeq,
  ]);
  const affected = await database.one<{ n: bigint }>('SELECT count(*) AS n FROM affected_runs');
  if (Number(affected?.n ?? 0) === 0) return 0;
  for (const table of PROJECTION_TABLES) {
    await database.run(`DELETE FROM ${table} WHERE run_id IN (SELECT run_id FROM affected_runs)`);
    await database.run(INSERTS[table]);
  }
  await database.run('DROP TABLE affected_runs');
  return Number(affected?.n ?? 0);
}

/** Recomputes every projection from the whole log. The result equals the incrementally maintained tables. */
export async function rebuildProjections(database: Database): Promise<number> {
  return database.transaction(async () => {
    for (const table of PROJECTION_TABLES) await database.run(`DELETE FROM ${table}`);
    return updateProjections(database, -1);
  });
}
