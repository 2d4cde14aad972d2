import type { EventLog } from '../core/index.js';

/**
 * A logged run as shadow replay reads it: the agent's turns in order, each with the tool calls it made and what came
 * back, and the verifier's verdict. Built from the projections `runs`, `steps`, `tool_calls` and `verifications`, so
 * runs from any source (imported traces, fresh trials) replay the same way.
 */

export interface LoggedCall {
  readonly step: number;
  readonly callId: string;
  readonly tool: string;
  readonly arguments: Readonly<Record<string, unknown>>;
  /** The shell command, when the call ran one. */
  readonly command?: string;
  /** What the tool printed, as the projection keeps it (its first 2,000 characters). */
  readonly output: string;
  readonly exitCode?: number;
  readonly error?: string;
}

/** One model turn: the agent's message and the calls it made (a step with calls but no logged message counts too). */
export interface LoggedTurn {
  readonly step: number;
  readonly message: string;
  readonly calls: readonly LoggedCall[];
}

export interface LoggedTest {
  readonly name: string;
  readonly status: string;
  readonly message?: string;
}

export interface LoggedRun {
  readonly runId: string;
  readonly task: string;
  readonly model?: string;
  readonly split?: string;
  readonly attempt?: number;
  readonly outcome: 'passed' | 'failed' | 'invalid' | 'unknown';
  readonly failureReason?: string;
  /** The task's instruction: from `run-start`, else the first user message. */
  readonly instruction?: string;
  readonly turns: readonly LoggedTurn[];
  readonly tests: readonly LoggedTest[];
}

/** Which runs to read. Every filter is optional; `runIds` wins over the others. */
export interface RunQuery {
  readonly runIds?: readonly string[];
  readonly outcome?: LoggedRun['outcome'];
  readonly models?: readonly string[];
  readonly tasks?: readonly string[];
  /** At most this many runs, picked by a hash of the run id (a stable sample, not the first ones logged). */
  readonly limit?: number;
}

const SELECT_RUNS = `
SELECT runs.run_id, runs.task, runs.model, runs.split, runs.attempt, runs.outcome, runs.failure_reason,
       (SELECT start.data->>'instruction' FROM events start
        WHERE start.run_id = runs.run_id AND start.type = 'run-start' ORDER BY start.seq LIMIT 1) AS instruction
FROM runs
WHERE ($1::VARCHAR IS NULL OR runs.run_id IN (SELECT unnest(from_json($1::JSON, '["VARCHAR"]'))))
  AND ($2::VARCHAR IS NULL OR runs.outcome = $2)
  AND ($3::VARCHAR IS NULL OR runs.model IN (SELECT unnest(from_json($3::JSON, '["VARCHAR"]'))))
  AND ($4::VARCHAR IS NULL OR runs.task IN (SELECT unnest(from_json($4::JSON, '["VARCHAR"]'))))
  AND coalesce(runs.relation, '') <> 'subagent'
ORDER BY md5(runs.run_id)
LIMIT $5`;

const SELECT_STEPS = `
SELECT run_id, step, role, coalesce(message, '') AS message
FROM steps
WHERE run_id IN (SELECT unnest(from_json($1::JSON, '["VARCHAR"]'))) AND role IN ('agent', 'user')
ORDER BY run_id, step, seq`;

const SELECT_CALLS = `
SELECT run_id, step, call_id, tool, CAST(arguments AS VARCHAR) AS arguments, command, exit_code,
       coalesce(output_excerpt, '') AS output, error
FROM tool_calls
WHERE run_id IN (SELECT unnest(from_json($1::JSON, '["VARCHAR"]')))
ORDER BY run_id, call_seq`;

const SELECT_TESTS = `
SELECT run_id, test_name, status, message
FROM verifications
WHERE run_id IN (SELECT unnest(from_json($1::JSON, '["VARCHAR"]')))
ORDER BY run_id, seq`;

interface RunRow extends Record<string, unknown> {
  run_id: string;
  task: string | null;
  model: string | null;
  split: string | null;
  attempt: number | null;
  outcome: string;
  failure_reason: string | null;
  instruction: string | null;
}

interface StepRow extends Record<string, unknown> {
  run_id: string;
  step: number;
  role: string;
  message: string;
}

interface CallRow extends Record<string, unknown> {
  run_id: string;
  step: number;
  call_id: string;
  tool: string;
  arguments: string | null;
  command: string | null;
  exit_code: number | null;
  output: string;
  error: string | null;
}

interface TestRow extends Record<string, unknown> {
  run_id: string;
  test_name: string;
  status: string;
  message: string | null;
}

/** Runs read per batch of queries: keeps the bound id lists short. */
const BATCH_SIZE = 500;

/** Reads runs with their turns, calls and verifier results; runs that are sub-agents of another run are left out. */
export async function loadLoggedRuns(log: EventLog, query: RunQuery = {}): Promise<LoggedRun[]> {
  if (query.runIds?.length === 0 || query.models?.length === 0 || query.tasks?.length === 0) return [];
  const json = (values: readonly string[] | undefined) => (values === undefined ? null : JSON.stringify(values));
  const rows = await log.query<RunRow>(SELECT_RUNS, [
    json(query.runIds),
    query.runIds === undefined ? (query.outcome ?? null) : null,
    query.runIds === undefined ? json(query.models) : null,
    query.runIds === undefined ? json(query.tasks) : null,
    query.limit ?? 1_000_000_000,
  ]);
  const runs: LoggedRun[] = [];
  for (let start = 0; start < rows.length; start += BATCH_SIZE) {
    runs.push(...(await loadBatch(log, rows.slice(start, start + BATCH_SIZE))));
  }
  return runs.sort((first, second) => first.runId.localeCompare(second.runId));
}

async function loadBatch(log: EventLog, rows: readonly RunRow[]): Promise<LoggedRun[]> {
  const ids = JSON.stringify(rows.map((row) => row.run_id));
  const [steps, calls, tests] = await Promise.all([
    log.query<StepRow>(SELECT_STEPS, [ids]),
    log.query<CallRow>(SELECT_CALLS, [ids]),
    log.query<TestRow>(SELECT_TESTS, [ids]),
  ]);
  const group = <T extends { run_id: string }>(items: readonly T[]) => {
    const byRun = new Map<string, T[]>();
    for (const item of items) {
      const list = byRun.get(item.run_id) ?? [];
      list.push(item);
      byRun.set(item.run_id, list);
    }
    return byRun;
  };
  const stepsByRun = group(steps);
  const callsByRun = group(calls);
  const testsByRun = group(tests);
  return rows.map((row) => {
    const runSteps = stepsByRun.get(row.run_id) ?? [];
    const instruction = row.instruction ?? runSteps.find((step) => step.role === 'user')?.message;
    return {
      runId: row.run_id,
      task: row.task ?? '(unknown task)',
      ...(row.model !== null ? { model: row.model } : {}),
      ...(row.split !== null ? { split: row.split } : {}),
      ...(row.attempt !== null ? { attempt: Number(row.attempt) } : {}),
      outcome: row.outcome as LoggedRun['outcome'],
      ...(row.failure_reason !== null ? { failureReason: row.failure_reason } : {}),
      ...(instruction !== undefined ? { instruction } : {}),
      turns: buildTurns(
        runSteps.filter((step) => step.role === 'agent'),
        (callsByRun.get(row.run_id) ?? []).map(toCall),
      ),
      tests: (testsByRun.get(row.run_id) ?? []).map((test) => ({
        name: test.test_name,
        status: test.status,
        ...(test.message !== null ? { message: test.message } : {}),
      })),
    };
  });
}

function toCall(row: CallRow): LoggedCall {
  let parsed: unknown = {};
  try {
    parsed = row.arguments === null ? {} : JSON.parse(row.arguments);
  } catch {
    parsed = { unparsedArguments: row.arguments };
  }
  const args =
    parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : { value: parsed };
  return {
    step: Number(row.step),
    callId: row.call_id,
    tool: row.tool,
    arguments: args,
    ...(row.command !== null ? { command: row.command } : {}),
    output: row.output,
    ...(row.exit_code !== null ? { exitCode: Number(row.exit_code) } : {}),
    ...(row.error !== null && row.error !== '' ? { error: row.error } : {}),
  };
}

/** Agent steps and the calls logged at each step, in step order; calls at a step with no agent message form a turn. */
export function buildTurns(
  agentSteps: readonly { step: number; message: string }[],
  calls: readonly LoggedCall[],
): LoggedTurn[] {
  const turns = new Map<number, { step: number; message: string; calls: LoggedCall[] }>();
  for (const step of agentSteps) {
    const number = Number(step.step);
    if (!turns.has(number)) turns.set(number, { step: number, message: step.message, calls: [] });
  }
  for (const call of calls) {
    const turn = turns.get(call.step) ?? { step: call.step, message: '', calls: [] };
    turn.calls.push(call);
    turns.set(call.step, turn);
  }
  return [...turns.values()].sort((first, second) => first.step - second.step);
}
