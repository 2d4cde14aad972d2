import { type DiagnosisCreated, type EventLog, type RejectedRecord, SystemError } from '../core/index.js';
import {
  buildDiagnosisPrompt,
  checkDiagnosisReply,
  DEFAULT_PROMPT_LIMITS,
  DIAGNOSIS_PROMPT_VERSION,
  DiagnosisReply,
  type DigestDetection,
  type DigestStep,
  type PromptLimits,
  type RunDigest,
} from './diagnosis-prompt.js';
import { type JsonCompletion, type Llm, LlmRequestError } from './llm.js';
import { prepareAnalytics } from './schema.js';

/**
 * LLM diagnosis of failed runs: for each failed valid run without a diagnosis by this prompt version and model, build
 * a bounded prompt from the run, ask the model, check the answer against the run, and store it as a
 * `diagnosis-create` event. The event id `diagnosis:<promptVersion>:<model>` makes the log the cache: the candidates are
 * read from the log before any request, so a run is never paid for twice.
 */

export interface DiagnoseOptions {
  /** Only runs of this agent model. */
  model?: string;
  split?: string;
  /** Diagnose at most this many runs (the oldest first); the rest wait for a later call. */
  limit?: number;
  /** Runs diagnosed at once (the `Llm` caps its own requests too). */
  concurrency?: number;
  promptVersion?: string;
  promptLimits?: PromptLimits;
  onProgress?: (progress: DiagnoseProgress) => void;
}

export interface DiagnoseProgress {
  done: number;
  total: number;
  diagnosed: number;
  rejected: number;
  failedRequests: number;
}

export interface DiagnoseSummary {
  promptVersion: string;
  llmModel: string;
  /** Failed valid runs in scope (agent model, split). */
  failedRuns: number;
  /** Of those, diagnosed before by this prompt version and model: nothing was asked for them. */
  cached: number;
  /** Of those, with no steps to diagnose (an outcome without a trajectory): nothing was asked for them. */
  withoutSteps: number;
  /** Left for a later call by `limit`. */
  deferred: number;
  diagnosed: number;
  rejected: number;
  failedRequests: number;
  rejections: { runId: string; reason: string }[];
  failures: { runId: string; reason: string }[];
  diagnoses: {
    runId: string;
    criticality: string;
    mechanism: string;
    evidenceSteps: number[];
    terminalCause: string;
  }[];
}

/** The event id of a diagnosis; one per run, prompt version and model. */
export function diagnosisEventId(promptVersion: string, model: string): string {
  return `diagnosis:${promptVersion}:${model}`;
}

/** Diagnoses the failed valid runs in scope that have no diagnosis by this prompt version and `llm.model` yet. */
export async function diagnoseRuns(log: EventLog, llm: Llm, options: DiagnoseOptions = {}): Promise<DiagnoseSummary> {
  const promptVersion = options.promptVersion ?? DIAGNOSIS_PROMPT_VERSION;
  const eventId = diagnosisEventId(promptVersion, llm.model);
  const scope = await loadScope(log, eventId, options);
  const pending = scope.filter((run) => !run.diagnosed && run.stepCount > 0);
  const chosen = options.limit === undefined ? pending : pending.slice(0, Math.max(0, options.limit));
  const summary: DiagnoseSummary = {
    promptVersion,
    llmModel: llm.model,
    failedRuns: scope.length,
    cached: scope.filter((run) => run.diagnosed).length,
    withoutSteps: scope.filter((run) => !run.diagnosed && run.stepCount === 0).length,
    deferred: pending.length - chosen.length,
    diagnosed: 0,
    rejected: 0,
    failedRequests: 0,
    rejections: [],
    failures: [],
    diagnoses: [],
  };
  if (chosen.length === 0) return summary;

  const detections = await loadDetections(log, options);
  // One DuckDB connection serves every worker: its statements (and each append's transaction) must not interleave.
  const serially = createSerialQueue();
  const store = createGroupWriter(log, serially);
  const limits = options.promptLimits ?? DEFAULT_PROMPT_LIMITS;
  let next = 0;
  let done = 0;
  let fatal: unknown;

  const diagnoseOne = async (runId: string) => {
    const digest = await serially(() => loadRunDigest(log, runId, detections.get(runId) ?? []));
    const prompt = buildDiagnosisPrompt(digest, limits);
    let completion: JsonCompletion<DiagnosisReply>;
    try {
      completion = await llm.completeJson(
        { system: prompt.system, user: prompt.user, schemaName: 'diagnosis' },
        DiagnosisReply,
      );
    } catch (error) {
      if (!(error instanceof LlmRequestError)) throw error;
      summary.failedRequests += 1;
      summary.failures.push({ runId, reason: error.message });
      return;
    }
    const checked = completion.ok
      ? checkDiagnosisReply(completion.value, digest)
      : { ok: false as const, reason: completion.reason };
    if (!checked.ok) {
      const reject: RejectedRecord = {
        format: 'diagnosis',
        file: runId,
        position: `${promptVersion} ${llm.model}`,
        reason: `Diagnosis of run ${runId} by ${llm.model} rejected: ${checked.reason}. Run \`selfharness diagnose\` again to retry it.`,
        raw: completion.content,
      };
      await store({ reject });
      summary.rejected += 1;
      summary.rejections.push({ runId, reason: checked.reason });
      return;
    }
    const event: DiagnosisCreated = {
      id: eventId,
      runId,
      type: 'diagnosis-create',
      time: new Date().toISOString(),
      source: { format: 'diagnosis' },
      data: {
        promptVersion,
        model: llm.model,
        terminalCause: checked.terminalCause,
        criticality: checked.criticality,
        mechanism: checked.mechanism,
        evidenceSteps: checked.evidenceSteps,
        reasoning: checked.reasoning,
      },
    };
    await store({ event });
    summary.diagnosed += 1;
    summary.diagnoses.push({
      runId,
      criticality: checked.criticality,
      mechanism: checked.mechanism,
      evidenceSteps: checked.evidenceSteps,
      terminalCause: checked.terminalCause,
    });
  };

  const worker = async () => {
    while (fatal === undefined && next < chosen.length) {
      const run = chosen[next++];
      if (!run) break;
      try {
        await diagnoseOne(run.runId);
      } catch (error) {
        fatal ??= error;
        return;
      }
      done += 1;
      options.onProgress?.({
        done,
        total: chosen.length,
        diagnosed: summary.diagnosed,
        rejected: summary.rejected,
        failedRequests: summary.failedRequests,
      });
    }
  };
  const workers = Math.max(1, Math.min(options.concurrency ?? 4, chosen.length));
  await Promise.all(Array.from({ length: workers }, worker));
  if (fatal !== undefined) throw fatal;
  summary.diagnoses.sort((left, right) => left.runId.localeCompare(right.runId));
  return summary;
}

interface ScopedRun {
  runId: string;
  stepCount: number;
  diagnosed: boolean;
}

/** Failed valid runs in scope, oldest first, each with whether this prompt version and model diagnosed it already. */
async function loadScope(log: EventLog, eventId: string, options: DiagnoseOptions): Promise<ScopedRun[]> {
  const { clause, values } = scopeFilter(options, 2);
  const rows = await log.query<{ run_id: string; step_count: number; diagnosed: boolean }>(
    `SELECT runs.run_id, runs.step_count,
            EXISTS (SELECT 1 FROM events WHERE events.type = 'diagnosis-create' AND events.run_id = runs.run_id
                    AND events.id = $1) AS diagnosed
     FROM runs WHERE runs.outcome = 'failed'${clause}
     ORDER BY runs.first_seq`,
    [eventId, ...values],
  );
  return rows.map((row) => ({ runId: row.run_id, stepCount: Number(row.step_count), diagnosed: row.diagnosed }));
}

function scopeFilter(options: DiagnoseOptions, firstParameter: number): { clause: string; values: string[] } {
  const conditions: string[] = [];
  const values: string[] = [];
  if (options.model !== undefined) {
    values.push(options.model);
    conditions.push(`model = $${firstParameter + values.length - 1}`);
  }
  if (options.split !== undefined) {
    values.push(options.split);
    conditions.push(`split = $${firstParameter + values.length - 1}`);
  }
  return { clause: conditions.map((condition) => ` AND ${condition}`).join(''), values };
}

/** The detectors' hits per run in scope (from the `detected_mechanisms` view), shown to the model beside the run. */
async function loadDetections(log: EventLog, options: DiagnoseOptions): Promise<Map<string, DigestDetection[]>> {
  const byRun = new Map<string, DigestDetection[]>();
  await prepareAnalytics(log.database);
  const { clause, values } = scopeFilter(options, 1);
  const rows = await log.query<{
    run_id: string;
    mechanism: string;
    first_step: number | null;
    evidence_steps: number[] | null;
    excerpt: string | null;
  }>(
    `SELECT run_id, mechanism, first_step, evidence_steps, excerpt FROM detected_mechanisms WHERE true${clause} ORDER BY run_id, first_step`,
    values,
  );
  for (const row of rows) {
    const list = byRun.get(row.run_id) ?? [];
    list.push({
      mechanism: row.mechanism,
      firstStep: row.first_step ?? undefined,
      evidenceSteps: (row.evidence_steps ?? []).map(Number),
      excerpt: row.excerpt ?? undefined,
    });
    byRun.set(row.run_id, list);
  }
  return byRun;
}

/**
 * Reads what the diagnosis sees of one run from the projections: the run, its instruction, its steps with their tool
 * calls, and its verifier results. Steps are those of `steps` and of `tool_calls` (a source may log calls only).
 */
export async function loadRunDigest(
  log: EventLog,
  runId: string,
  detections: DigestDetection[] = [],
): Promise<RunDigest> {
  const [run] = await log.query<{
    task: string | null;
    dataset: string | null;
    model: string | null;
    outcome: string;
    failure_reason: string | null;
    reward: number | null;
  }>('SELECT task, dataset, model, outcome, failure_reason, reward FROM runs WHERE run_id = $1', [runId]);
  if (!run) throw new SystemError(`Run ${runId} is not in the runs table: run \`selfharness rebuild\` and try again.`);
  const [start] = await log.query<{ instruction: string | null }>(
    "SELECT data->>'instruction' AS instruction FROM events WHERE run_id = $1 AND type = 'run-start' ORDER BY seq DESC LIMIT 1",
    [runId],
  );
  const stepRows = await log.query<{ step: number; role: string; message: string | null; reasoning: string | null }>(
    'SELECT step, role, message, reasoning FROM steps WHERE run_id = $1 ORDER BY step',
    [runId],
  );
  const callRows = await log.query<{
    step: number;
    tool: string;
    command: string | null;
    arguments: string | null;
    exit_code: number | null;
    error: string | null;
    output_excerpt: string | null;
  }>(
    'SELECT step, tool, command, CAST(arguments AS VARCHAR) AS arguments, exit_code, error, output_excerpt FROM tool_calls WHERE run_id = $1 ORDER BY step, call_seq',
    [runId],
  );
  const testRows = await log.query<{ test_name: string; status: string; message: string | null }>(
    'SELECT test_name, status, message FROM verifications WHERE run_id = $1 ORDER BY seq, test_name',
    [runId],
  );
  const steps = new Map<number, DigestStep>();
  for (const row of stepRows) {
    steps.set(row.step, {
      step: row.step,
      role: row.role,
      message: row.message ?? '',
      reasoning: row.reasoning ?? undefined,
      calls: [],
    });
  }
  for (const row of callRows) {
    let step = steps.get(row.step);
    if (!step) {
      step = { step: row.step, role: 'agent', message: '', calls: [] };
      steps.set(row.step, step);
    }
    step.calls.push({
      tool: row.tool,
      command: row.command ?? undefined,
      arguments: row.command === null ? (row.arguments ?? undefined) : undefined,
      exitCode: row.exit_code ?? undefined,
      error: row.error ?? undefined,
      output: row.output_excerpt ?? undefined,
    });
  }
  return {
    runId,
    task: run.task ?? '(unknown task)',
    dataset: run.dataset ?? undefined,
    model: run.model ?? undefined,
    outcome: run.outcome,
    failureReason: run.failure_reason ?? undefined,
    reward: run.reward ?? undefined,
    instruction: start?.instruction ?? undefined,
    steps: [...steps.values()].sort((left, right) => left.step - right.step),
    tests: testRows.map((row) => ({ name: row.test_name, status: row.status, message: row.message ?? undefined })),
    detections,
  };
}

/**
 * Writes diagnoses and rejects as they come, grouping those that arrive while an append is running into the next one
 * (a group commit): nothing waits for a batch to fill, and under load one transaction carries many diagnoses. The
 * promise of each item resolves once it is in the log.
 */
function createGroupWriter(
  log: EventLog,
  serially: <T>(work: () => Promise<T>) => Promise<T>,
): (item: { event?: DiagnosisCreated; reject?: RejectedRecord }) => Promise<void> {
  let events: DiagnosisCreated[] = [];
  let rejects: RejectedRecord[] = [];
  let writing: Promise<void> | undefined;
  const drain = async () => {
    try {
      while (events.length + rejects.length > 0) {
        const batch = { events, rejects };
        events = [];
        rejects = [];
        await serially(() => log.appendEvents(batch.events, batch.rejects));
      }
    } finally {
      writing = undefined;
    }
  };
  return (item) => {
    if (item.event) events.push(item.event);
    if (item.reject) rejects.push(item.reject);
    writing ??= drain();
    return writing;
  };
}

/** Runs the given tasks one after another, in the order they were handed in. */
function createSerialQueue(): <T>(work: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(work: () => Promise<T>) => {
    const result = tail.then(work);
    tail = result.catch(() => undefined);
    return result;
  };
}
