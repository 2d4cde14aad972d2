import type { EventLog, Row } from '../core/index.js';

/** Filters of `GET /v1/runs`; each is bound, never spliced. */
export interface RunFilters {
  model?: string;
  split?: string;
  outcome?: string;
  limit: number;
  offset: number;
}

const LIST_RUNS = `
SELECT * EXCLUDE (first_seq, last_seq) FROM runs
WHERE ($1::VARCHAR IS NULL OR model = $1) AND ($2::VARCHAR IS NULL OR split = $2) AND ($3::VARCHAR IS NULL OR outcome = $3)
ORDER BY first_seq
LIMIT $4 OFFSET $5`;

const COUNT_RUNS = `
SELECT count(*) AS n FROM runs
WHERE ($1::VARCHAR IS NULL OR model = $1) AND ($2::VARCHAR IS NULL OR split = $2) AND ($3::VARCHAR IS NULL OR outcome = $3)`;

export async function listRuns(log: EventLog, filters: RunFilters): Promise<{ total: number; runs: Row[] }> {
  const values = [filters.model ?? null, filters.split ?? null, filters.outcome ?? null];
  const total = Number((await log.query<{ n: bigint }>(COUNT_RUNS, values))[0]?.n ?? 0);
  const runs = await log.query(LIST_RUNS, [...values, filters.limit, filters.offset]);
  return { total, runs };
}

/** One run with its steps, tool calls and verifier results, or `undefined` when the log has no such run. */
export async function loadRun(log: EventLog, runId: string): Promise<Row | undefined> {
  const [run] = await log.query('SELECT * EXCLUDE (first_seq, last_seq) FROM runs WHERE run_id = $1', [runId]);
  if (!run) return undefined;
  const steps = await log.query('SELECT * EXCLUDE (seq) FROM steps WHERE run_id = $1 ORDER BY step, seq', [runId]);
  const toolCalls = await log.query(
    'SELECT * EXCLUDE (call_seq, result_seq) FROM tool_calls WHERE run_id = $1 ORDER BY step, call_seq',
    [runId],
  );
  const verifications = await log.query('SELECT * EXCLUDE (seq) FROM verifications WHERE run_id = $1 ORDER BY seq', [
    runId,
  ]);
  return { ...run, steps, toolCalls, verifications };
}

const LATEST_CLUSTERS = `
SELECT mining_id, cluster_id, rank, label, mode, criticality, failure_count, run_count, task_count, mechanisms, tasks,
       models, score, CAST(card AS VARCHAR) AS card, created_at
FROM weakness_clusters
WHERE mining_id = (SELECT mining_id FROM weakness_clusters ORDER BY created_at DESC, mining_id LIMIT 1)
ORDER BY rank`;

/** The clusters of the latest mining run (`selfharness mine`), best first; none before the first one. */
export async function latestWeaknesses(log: EventLog): Promise<Row[]> {
  const tables = await log.query<{ n: bigint }>(
    "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'weakness_clusters'",
  );
  if (Number(tables[0]?.n ?? 0) === 0) return [];
  const rows = await log.query<Row & { card: string }>(LATEST_CLUSTERS);
  return rows.map((row) => ({ ...row, card: JSON.parse(row.card) as unknown }));
}

/** Makes query values JSON-safe: big integers become numbers (strings past 2^53), dates ISO text, blobs base64. */
export function toJsonValue(value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(value)
      : String(value);
  }
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, toJsonValue(inner)]));
  }
  return value;
}
