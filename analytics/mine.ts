import { createHash } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listValue } from '@duckdb/node-api';
import { type Criticality, createStagingFolder, type Database, type EventLog, type SqlValue } from '../core/index.js';
import {
  applySupportRule,
  DEFAULT_MAX_K,
  DEFAULT_SUPPORT,
  type EvidenceCall,
  type Failure,
  type FailureDiagnosis,
  type FailureGroup,
  groupByKMeans,
  groupBySignature,
  type SupportRule,
} from './clustering.js';
import { type Detection, type DetectorThresholds, detectMechanisms } from './detectors.js';
import type { Embedder } from './embedding/embedder.js';
import { type EmbeddingProgress, embedWithCache } from './embedding/embedding-cache.js';
import {
  buildClusterCards,
  type ClusterCard,
  clusterIdOf,
  type MiningMode,
  mechanismTitle,
  type PassingRun,
} from './ranking.js';
import { installAnalytics } from './schema.js';

/**
 * Weakness mining, wired together: detections (and diagnoses, when present) → one failure text each → groups
 * (k-means over cached embeddings, or exact signatures) → the ≥ 2 runs / ≥ 2 tasks rule → ranked cluster cards, stored
 * in `weakness_clusters` / `weakness_cluster_members`. The logic lives in clustering.ts and ranking.ts.
 */

export interface MineOptions {
  /** Only failures of this agent model. */
  model?: string;
  split?: string;
  mode?: MiningMode;
  /** Needed for `kmeans` mode. */
  embedder?: Embedder;
  /** Seed for k-means (default 1). */
  seed?: number;
  /** Return only the best N cards (all are stored). */
  top?: number;
  /** Largest k tried (default 12). */
  maxClusters?: number;
  support?: SupportRule;
  /** Passed to the detectors unchanged. */
  thresholds?: Partial<DetectorThresholds>;
  /** Write the clusters to the mining tables (default true; needs a log opened for writing). */
  store?: boolean;
  onProgress?: (progress: MineProgress) => void;
}

export type MineProgress =
  | { phase: 'detect' | 'evidence' | 'cluster' | 'rank' | 'store' }
  | ({ phase: 'embed' } & EmbeddingProgress);

export interface MineTimings {
  detectMs: number;
  evidenceMs: number;
  embedMs: number;
  clusterMs: number;
  rankMs: number;
  storeMs: number;
}

export interface MiningResult {
  /** Identifies the options; the tables hold the latest clusters per mining id. */
  miningId: string;
  mode: MiningMode;
  embedder?: string;
  seed: number;
  /** Failed valid runs in scope (model, split). */
  failedRuns: number;
  /** Of those, runs with at least one detected mechanism or diagnosis. */
  explainedRuns: number;
  /** Detected mechanisms (one per run and mechanism) that were grouped. */
  failures: number;
  /** Groups left out by the support rule, and their failures. */
  dropped: { clusters: number; failures: number };
  /** k-means only: the chosen k and the silhouette of each k tried. */
  k?: number;
  silhouettes?: { k: number; silhouette: number }[];
  /** k-means only: distinct failure texts, how many were embedded now and how many came from the cache. */
  embedding?: { distinct: number; embedded: number; cached: number };
  clusters: ClusterCard[];
  timings: MineTimings;
}

/** Evidence steps per failure whose tool calls go into its text and card. */
const STEPS_PER_FAILURE = 3;
/** Characters of a tool call's output kept as evidence. */
const OUTPUT_CHARS = 240;
/** Characters of a tool call's output in a failure text. */
const TEXT_OUTPUT_CHARS = 160;
/** Characters of a failure text sent to the embedder: enough for the pattern, short enough to embed fast. */
const TEXT_CHARS = 600;

const COUNT_FAILED_RUNS = `
SELECT count(*) AS n FROM runs
WHERE outcome = 'failed' AND ($1::VARCHAR IS NULL OR model = $1) AND ($2::VARCHAR IS NULL OR split = $2)`;

/** The tool calls at the given (run, step) pairs, read from file `$1`. */
const EVIDENCE_CALLS = `
SELECT calls.run_id, calls.step, calls.tool, calls.command, calls.exit_code,
       left(coalesce(nullif(calls.error, ''), calls.output_excerpt, ''), ${OUTPUT_CHARS}) AS output
FROM tool_calls calls
JOIN (SELECT DISTINCT run_id, step FROM read_json($1, format = 'newline_delimited',
                                                  columns = {run_id: 'VARCHAR', step: 'INTEGER'})) wanted
  ON wanted.run_id = calls.run_id AND wanted.step = calls.step
ORDER BY calls.run_id, calls.step, calls.call_seq`;

/** The latest diagnosis of each failed run in scope, from the `diagnosis-create` events. */
const LATEST_DIAGNOSES = `
SELECT events.run_id, runs.task, runs.model,
       events.data->>'terminalCause' AS terminal_cause, events.data->>'criticality' AS criticality,
       events.data->>'mechanism' AS mechanism, events.data->>'reasoning' AS reasoning,
       CAST(events.data->'evidenceSteps' AS INTEGER[]) AS evidence_steps
FROM events JOIN runs USING (run_id)
WHERE events.type = 'diagnosis-create' AND runs.outcome = 'failed'
  AND ($1::VARCHAR IS NULL OR runs.model = $1) AND ($2::VARCHAR IS NULL OR runs.split = $2)
QUALIFY row_number() OVER (PARTITION BY events.run_id ORDER BY events.seq DESC) = 1`;

const PASSING_RUNS = `
SELECT run_id, task, model FROM runs
WHERE outcome = 'passed' AND task IN (SELECT unnest($1))
  AND ($2::VARCHAR IS NULL OR model = $2) AND ($3::VARCHAR IS NULL OR split = $3)
ORDER BY task, run_id`;

const DELETE_CLUSTERS = 'DELETE FROM weakness_clusters WHERE mining_id = $1';
const DELETE_MEMBERS = 'DELETE FROM weakness_cluster_members WHERE mining_id = $1';

const INSERT_CLUSTERS = `
INSERT INTO weakness_clusters
SELECT mining_id, cluster_id, rank, label, mode, criticality, failure_count, run_count, task_count, mechanisms, tasks,
       models, score, card, now()
FROM read_json($1, format = 'newline_delimited', columns = {
  mining_id: 'VARCHAR', cluster_id: 'VARCHAR', rank: 'INTEGER', label: 'VARCHAR', mode: 'VARCHAR',
  criticality: 'VARCHAR', failure_count: 'INTEGER', run_count: 'INTEGER', task_count: 'INTEGER',
  mechanisms: 'VARCHAR[]', tasks: 'VARCHAR[]', models: 'VARCHAR[]', score: 'DOUBLE', card: 'JSON'
})`;

const INSERT_MEMBERS = `
INSERT INTO weakness_cluster_members
SELECT mining_id, cluster_id, run_id, mechanism, first_step, evidence_steps, excerpt
FROM read_json($1, format = 'newline_delimited', columns = {
  mining_id: 'VARCHAR', cluster_id: 'VARCHAR', run_id: 'VARCHAR', mechanism: 'VARCHAR', first_step: 'INTEGER',
  evidence_steps: 'INTEGER[]', excerpt: 'VARCHAR'
})`;

/**
 * Mines the log for ranked weakness clusters. Deterministic: the same log, options and seed give the same clusters
 * in the same order (failures are sorted before grouping; k-means is seeded; cached vectors equal fresh ones).
 */
export async function mineWeaknesses(log: EventLog, options: MineOptions = {}): Promise<MiningResult> {
  const mode = options.mode ?? 'kmeans';
  const seed = options.seed ?? 1;
  const support = options.support ?? DEFAULT_SUPPORT;
  const maxClusters = options.maxClusters ?? DEFAULT_MAX_K;
  const timings: MineTimings = { detectMs: 0, evidenceMs: 0, embedMs: 0, clusterMs: 0, rankMs: 0, storeMs: 0 };
  const filters: SqlValue[] = [options.model ?? null, options.split ?? null];
  const database = log.database;
  if (options.store !== false) await installAnalytics(database);

  let started = performance.now();
  options.onProgress?.({ phase: 'detect' });
  const detections = await detectMechanisms(log, {
    ...(options.thresholds ? { thresholds: options.thresholds } : {}),
    ...(options.model !== undefined ? { model: options.model } : {}),
    ...(options.split !== undefined ? { split: options.split } : {}),
  });
  const failedRuns = Number((await database.one<{ n: bigint }>(COUNT_FAILED_RUNS, filters))?.n ?? 0);
  timings.detectMs = performance.now() - started;

  started = performance.now();
  options.onProgress?.({ phase: 'evidence' });
  const diagnoses = await loadDiagnoses(database, filters);
  const failures = await buildFailures(database, detections, diagnoses);
  timings.evidenceMs = performance.now() - started;

  const embedderName = mode === 'kmeans' ? options.embedder?.name : undefined;
  const miningId = miningIdOf({
    mode,
    model: options.model ?? null,
    split: options.split ?? null,
    embedder: embedderName ?? null,
    seed: mode === 'kmeans' ? seed : null,
    maxClusters: mode === 'kmeans' ? maxClusters : null,
    support,
    thresholds: options.thresholds ?? null,
  });

  let groups: FailureGroup[];
  let kmeansSummary: Pick<MiningResult, 'k' | 'silhouettes' | 'embedding'> = {};
  if (mode === 'kmeans') {
    if (!options.embedder) throw new TypeError('mineWeaknesses: kmeans mode needs options.embedder');
    started = performance.now();
    const texts = failures.map(failureText);
    const distinctTexts = [...new Set(texts)].sort();
    const pointIndex = new Map(distinctTexts.map((text, index) => [text, index]));
    const embedded = await embedWithCache(database, options.embedder, distinctTexts, {
      onProgress: (progress) => options.onProgress?.({ phase: 'embed', ...progress }),
    });
    timings.embedMs = performance.now() - started;
    started = performance.now();
    options.onProgress?.({ phase: 'cluster' });
    const { groups: kmeansGroups, clustering } = groupByKMeans(
      failures.length,
      texts.map((text) => pointIndex.get(text) ?? 0),
      embedded.vectors,
      { seed, maxK: maxClusters },
    );
    groups = kmeansGroups;
    kmeansSummary = {
      k: clustering.k,
      silhouettes: clustering.silhouettes.map(({ k, silhouette }) => ({
        k,
        silhouette: Math.round(silhouette * 10_000) / 10_000,
      })),
      embedding: { distinct: embedded.distinct, embedded: embedded.embedded, cached: embedded.cached },
    };
    timings.clusterMs = performance.now() - started;
  } else {
    started = performance.now();
    options.onProgress?.({ phase: 'cluster' });
    groups = groupBySignature(failures);
    timings.clusterMs = performance.now() - started;
  }

  started = performance.now();
  options.onProgress?.({ phase: 'rank' });
  const { kept, dropped } = applySupportRule(groups, failures, support);
  const tasks = [...new Set(kept.flatMap((group) => group.members.map((index) => failures[index]?.task ?? '')))];
  const passingRunsByTask = await loadPassingRuns(database, tasks, filters);
  const cards = buildClusterCards(kept, failures, { mode, passingRunsByTask });
  timings.rankMs = performance.now() - started;

  if (options.store !== false) {
    started = performance.now();
    options.onProgress?.({ phase: 'store' });
    await storeClusters(database, miningId, cards, kept, failures);
    timings.storeMs = performance.now() - started;
  }

  return {
    miningId,
    mode,
    ...(embedderName ? { embedder: embedderName } : {}),
    seed,
    failedRuns,
    explainedRuns: new Set(failures.map((failure) => failure.runId)).size,
    failures: failures.length,
    dropped: { clusters: dropped.groups, failures: dropped.failures },
    ...kmeansSummary,
    clusters: options.top !== undefined ? cards.slice(0, options.top) : cards,
    timings,
  };
}

/**
 * The text embedded for a failure: what the detector and the diagnosis point at, never the whole trace. Long numbers
 * and hex ids are masked, so the same failure in two runs reads the same (and is embedded once).
 */
export function failureText(failure: Failure): string {
  const parts = [`${mechanismTitle(failure.mechanism)}.`];
  if (failure.excerpt) parts.push(failure.excerpt);
  for (const call of failure.calls) {
    const command = call.command ?? call.tool;
    const exit = call.exitCode === null ? '' : ` (exit ${call.exitCode})`;
    parts.push(`$ ${command.slice(0, 200)}${exit}${call.output ? `: ${call.output.slice(0, TEXT_OUTPUT_CHARS)}` : ''}`);
  }
  if (failure.diagnosis) {
    parts.push(`Terminal cause: ${failure.diagnosis.terminalCause}. Mechanism: ${failure.diagnosis.mechanism}.`);
    if (failure.diagnosis.reasoning) parts.push(failure.diagnosis.reasoning.slice(0, 300));
  }
  const text = parts
    .join('\n')
    .replace(/\b0x[0-9a-f]+\b|\b[0-9a-f]{8,}\b/gi, '<id>')
    .replace(/\d{3,}/g, '<n>')
    .replace(/[ \t]+/g, ' ')
    .trim();
  return text.slice(0, TEXT_CHARS);
}

function miningIdOf(parameters: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify(parameters)).digest('hex').slice(0, 16);
}

type DiagnosisRow = {
  run_id: string;
  task: string | null;
  model: string | null;
  terminal_cause: string | null;
  criticality: string | null;
  mechanism: string | null;
  reasoning: string | null;
  evidence_steps: number[] | null;
};

const CRITICALITIES = new Set<Criticality>(['root-cause', 'contributor', 'friction', 'unknown']);

async function loadDiagnoses(database: Database, filters: SqlValue[]): Promise<DiagnosisRow[]> {
  return database.all<DiagnosisRow>(LATEST_DIAGNOSES, filters);
}

function toDiagnosis(row: DiagnosisRow): FailureDiagnosis {
  const criticality = (row.criticality ?? 'unknown') as Criticality;
  return {
    terminalCause: row.terminal_cause ?? '',
    criticality: CRITICALITIES.has(criticality) ? criticality : 'unknown',
    mechanism: row.mechanism ?? '',
    reasoning: row.reasoning ?? '',
  };
}

/**
 * One failure per detection, with its diagnosis (if the run has one) and the tool calls at its first evidence steps.
 * A diagnosed run where no detector fired becomes one failure named by the diagnosis's mechanism. Sorted by run and
 * mechanism, so grouping sees the same order whatever order the detectors returned.
 */
async function buildFailures(
  database: Database,
  detections: readonly Detection[],
  diagnoses: readonly DiagnosisRow[],
): Promise<Failure[]> {
  const diagnosisByRun = new Map(diagnoses.map((row) => [row.run_id, row]));
  const detectedRuns = new Set(detections.map((detection) => detection.runId));
  const failures: Failure[] = detections.map((detection) => {
    const diagnosis = diagnosisByRun.get(detection.runId);
    return {
      runId: detection.runId,
      mechanism: detection.mechanism,
      task: detection.task ?? '(no task)',
      model: detection.model ?? '(no model)',
      firstStep: detection.firstStep ?? null,
      evidenceSteps: [...(detection.evidenceSteps ?? [])],
      excerpt: detection.excerpt ?? '',
      calls: [],
      ...(diagnosis ? { diagnosis: toDiagnosis(diagnosis) } : {}),
    };
  });
  for (const row of diagnoses) {
    if (detectedRuns.has(row.run_id)) continue;
    const steps = [...(row.evidence_steps ?? [])].sort((left, right) => left - right);
    failures.push({
      runId: row.run_id,
      mechanism: slug(row.mechanism ?? '') || 'diagnosed',
      task: row.task ?? '(no task)',
      model: row.model ?? '(no model)',
      firstStep: steps[0] ?? null,
      evidenceSteps: steps,
      excerpt: (row.reasoning ?? '').slice(0, OUTPUT_CHARS),
      calls: [],
      diagnosis: toDiagnosis(row),
    });
  }
  failures.sort((left, right) =>
    left.runId === right.runId ? compareText(left.mechanism, right.mechanism) : compareText(left.runId, right.runId),
  );

  const wanted = failures.flatMap((failure) =>
    failure.evidenceSteps.slice(0, STEPS_PER_FAILURE).map((step) => ({ run_id: failure.runId, step })),
  );
  const callsByStep = new Map<string, EvidenceCall[]>();
  if (wanted.length > 0) {
    const rows = await withJsonLines(wanted, (file) =>
      database.all<{
        run_id: string;
        step: number;
        tool: string;
        command: string | null;
        exit_code: number | null;
        output: string | null;
      }>(EVIDENCE_CALLS, [file]),
    );
    for (const row of rows) {
      const key = `${row.run_id}\u0000${row.step}`;
      const calls = callsByStep.get(key) ?? [];
      calls.push({
        step: row.step,
        tool: row.tool,
        command: row.command,
        exitCode: row.exit_code,
        output: (row.output ?? '').replace(/\s+/g, ' ').trim(),
      });
      callsByStep.set(key, calls);
    }
  }
  return failures.map((failure) => ({
    ...failure,
    calls: failure.evidenceSteps
      .slice(0, STEPS_PER_FAILURE)
      .flatMap((step) => callsByStep.get(`${failure.runId}\u0000${step}`)?.slice(0, 2) ?? []),
  }));
}

function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60);
}

function compareText(left: string, right: string): number {
  return left < right ? -1 : left > right ? 1 : 0;
}

async function loadPassingRuns(
  database: Database,
  tasks: readonly string[],
  filters: SqlValue[],
): Promise<Map<string, PassingRun[]>> {
  const byTask = new Map<string, PassingRun[]>();
  if (tasks.length === 0) return byTask;
  const rows = await database.all<{ run_id: string; task: string; model: string | null }>(PASSING_RUNS, [
    listValue([...tasks]),
    ...filters,
  ]);
  for (const row of rows) {
    const runs = byTask.get(row.task) ?? [];
    runs.push({ runId: row.run_id, task: row.task, model: row.model ?? '(no model)' });
    byTask.set(row.task, runs);
  }
  return byTask;
}

/** Replaces the clusters stored for this mining id, in one transaction. */
async function storeClusters(
  database: Database,
  miningId: string,
  cards: readonly ClusterCard[],
  groups: readonly FailureGroup[],
  failures: readonly Failure[],
): Promise<void> {
  const clusterRows = cards.map((card) => ({
    mining_id: miningId,
    cluster_id: card.clusterId,
    rank: card.rank,
    label: card.label,
    mode: card.mode,
    criticality: card.criticality,
    failure_count: card.failureCount,
    run_count: card.runCount,
    task_count: card.taskCount,
    mechanisms: card.mechanisms.map((entry) => entry.mechanism),
    tasks: card.tasks,
    models: card.models,
    score: card.score,
    card,
  }));
  const memberRows = groups.flatMap((group) => {
    const members = group.members.map((index) => failures[index] as Failure);
    const clusterId = clusterIdOf(members);
    return members.map((failure) => ({
      mining_id: miningId,
      cluster_id: clusterId,
      run_id: failure.runId,
      mechanism: failure.mechanism,
      first_step: failure.firstStep,
      evidence_steps: failure.evidenceSteps,
      excerpt: failure.excerpt,
    }));
  });
  await database.transaction(async () => {
    await database.run(DELETE_MEMBERS, [miningId]);
    await database.run(DELETE_CLUSTERS, [miningId]);
    if (clusterRows.length > 0) await withJsonLines(clusterRows, (file) => database.run(INSERT_CLUSTERS, [file]));
    if (memberRows.length > 0) await withJsonLines(memberRows, (file) => database.run(INSERT_MEMBERS, [file]));
  });
}

/** Writes rows as newline-delimited JSON to a temporary file for `read_json`, and removes it afterwards. */
async function withJsonLines<T>(rows: readonly unknown[], work: (file: string) => Promise<T>): Promise<T> {
  const folder = createStagingFolder('mine-');
  const file = join(folder, 'rows.ndjson');
  try {
    writeFileSync(file, rows.map((row) => JSON.stringify(row)).join('\n'));
    return await work(file);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}
