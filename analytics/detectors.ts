import type { EventLog } from '../core/index.js';
import { prepareAnalytics } from './schema.js';
import { classifiedToolCalls, FAILURE_PATTERNS, PAGINATION_TOOLS, sqlText } from './views.js';

/**
 * Deterministic failure-mechanism detectors, written in SQL over the projections (`runs`, `steps`, `tool_calls`,
 * `verifications`). Each is a DuckDB table macro `detect_<mechanism>(…)` whose thresholds are named parameters with
 * defaults, so analysts call them from `selfharness sql` and code binds its values; `detect_mechanisms(…)` runs them
 * all in one statement (the tool calls are classified once). Every detection row names the run, the mechanism, the
 * first step, the evidence steps (ordered, at most ten) and a short excerpt, with the run's context for filtering.
 * Invalid (infrastructure) runs are never mined.
 */

/** The fixed vocabulary of mechanisms. Diagnosis, clustering, profiles and the proposer rely on these exact ids. */
export const mechanisms = [
  'repeated-failed-command',
  'tool-call-loop',
  'missing-required-artifact',
  'lost-environment-state',
  'missing-dependency',
  'exploration-without-implementation',
  'budget-exhaustion',
  'malformed-tool-call',
  'premature-completion',
] as const;
export type Mechanism = (typeof mechanisms)[number];

export function isMechanism(value: string): value is Mechanism {
  return (mechanisms as readonly string[]).includes(value);
}

/** One mechanism found in one run. */
export interface Detection {
  runId: string;
  mechanism: Mechanism;
  /** The step where the mechanism first shows; null where only the verifier or the run's end shows it. */
  firstStep: number | null;
  /** Steps (of `steps` or `tool_calls`) that show it, ascending, at most ten. */
  evidenceSteps: number[];
  /** The telling output or error, at most 300 characters. */
  excerpt: string;
  task: string | null;
  model: string | null;
  outcome: string;
  split: string | null;
  harnessVersion: string | null;
  dataset: string | null;
}

/** The thresholds of the detectors. Each is a named parameter of the SQL macros, with the same default. */
export interface DetectorThresholds {
  /** repeated-failed-command: how many times one command (or one edit tool) must fail in a run. */
  minFailures: number;
  /** tool-call-loop: how many times one tool call with identical arguments must occur in a run. */
  minRepeats: number;
  /** exploration-without-implementation: the fewest tool calls a run must make to be judged. */
  minCalls: number;
  /** exploration-without-implementation: the least share of calls that only read or navigate. */
  minReadShare: number;
  /** exploration-without-implementation: the most calls that change files (edits, writes). */
  maxImplementationCalls: number;
  /** malformed-tool-call: how many malformed calls or parse errors a run needs. */
  minMalformed: number;
  /** missing-dependency: how many calls must fail on a missing command, module or package. */
  minDependencyFailures: number;
}

export const defaultThresholds: DetectorThresholds = {
  minFailures: 3,
  minRepeats: 4,
  minCalls: 10,
  minReadShare: 0.8,
  maxImplementationCalls: 0,
  minMalformed: 1,
  minDependencyFailures: 1,
};

/** The macro parameter of each threshold. */
const PARAMETER_NAMES: Record<keyof DetectorThresholds, string> = {
  minFailures: 'min_failures',
  minRepeats: 'min_repeats',
  minCalls: 'min_calls',
  minReadShare: 'min_read_share',
  maxImplementationCalls: 'max_implementation_calls',
  minMalformed: 'min_malformed',
  minDependencyFailures: 'min_dependency_failures',
};

/** How many evidence steps a detection keeps. */
export const EVIDENCE_CAP = 10;

/** A run-level failure reason that says the run hit a cost, time, step or context budget (not a verifier timeout). */
export const BUDGET_REASON =
  '(?i)exit_cost|cost[ _-]?limit|agent_timeout|time[ _-]?limit|(^|[^a-z_])time ?out|max[ _-]?(steps|turns|iterations|episodes)|step[ _-]?limit|context[ _-]?(length|window)|exit_context|token[ _-]?limit|budget|exhausted|exceeded';
/** A run-level failure reason that says the agent's output could not be parsed. */
const MALFORMED_REASON = '(?i)exit_format|format[ _-]?error|parse[ _-]?error|malformed';
/** A failed test (name and message) that says a required output is missing. */
export const ARTIFACT_TEST = String.raw`(?i)exist|missing|not found|no such file|FileNotFound|not created|_created\b|was not (written|produced|generated)`;
/** The last agent message claims the task is done. */
const COMPLETION_CLAIM =
  '(?i)(task|work) (is|has been) (now )?(complete|completed|done|finished|accomplished|solved)|(successfully|have) (completed|finished|solved) the task|all (the )?tests (now )?pass|the (issue|bug|problem) (is|has been) (now )?(fixed|resolved)';

const MALFORMED_OUTPUT = FAILURE_PATTERNS.find((entry) => entry.kind === 'malformed-call')?.pattern ?? '';

const evidence = (column: string) => `list_sort(list_distinct(list(${column})))[1:${EVIDENCE_CAP}]`;
const squeeze = (expression: string) => `left(trim(regexp_replace(${expression}, '\\s+', ' ', 'g')), 300)`;

type Cte = 'calls' | 'last_steps';

interface DetectorSql {
  mechanism: Mechanism;
  thresholds: readonly (keyof DetectorThresholds)[];
  needs: readonly Cte[];
  /** Rows (run_id, first_step, evidence_steps, excerpt), at most one per run, reading `scope` and `needs`. */
  sql: string;
}

/** The strongest group per run: the one with the most rows, then the earliest. */
const strongest = (inner: string, weight: string) =>
  `SELECT run_id, first_step, evidence_steps, excerpt FROM (${inner}) QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY ${weight} DESC, first_step) = 1`;

const DETECTORS: readonly DetectorSql[] = [
  {
    mechanism: 'repeated-failed-command',
    thresholds: ['minFailures'],
    needs: ['calls'],
    sql: strongest(
      `SELECT run_id, min(step) AS first_step, ${evidence('step')} AS evidence_steps, count(*) AS failures,
              ${squeeze(`'\`' || failure_key || '\` failed ' || count(*) || ' times: ' || coalesce(arg_min(failure_excerpt, call_seq), '')`)} AS excerpt
       FROM (SELECT *, CASE WHEN action_kind = 'edit' THEN tool || ' (file edits)' ELSE command_key END AS failure_key
             FROM calls WHERE is_failure AND (action_kind = 'edit' OR failure_kind <> 'malformed-call'))
       GROUP BY run_id, failure_key
       HAVING count(*) >= min_failures`,
      'failures',
    ),
  },
  {
    mechanism: 'tool-call-loop',
    thresholds: ['minRepeats'],
    needs: ['calls'],
    sql: strongest(
      `SELECT run_id, min(step) AS first_step, ${evidence('step')} AS evidence_steps, count(*) AS repeats,
              ${squeeze(`'\`' || any_value(command_key) || '\` called ' || count(*) || ' times with the same arguments' || coalesce(': ' || arg_min(coalesce(failure_excerpt, nullif(left(trim(output_excerpt), 150), '')), call_seq), '')`)} AS excerpt
       FROM calls
       WHERE action_kind <> 'completion' AND lower(tool) NOT IN (${PAGINATION_TOOLS.map(sqlText).join(', ')})
       GROUP BY run_id, tool, coalesce(command, CAST(arguments AS VARCHAR))
       HAVING count(*) >= min_repeats`,
      'repeats',
    ),
  },
  {
    mechanism: 'missing-required-artifact',
    thresholds: [],
    needs: [],
    sql: `
      SELECT run_id, CAST(NULL AS INTEGER) AS first_step, CAST([] AS INTEGER[]) AS evidence_steps,
             ${squeeze(`'verifier: ' || string_agg(test_name || coalesce(': ' || message, ''), '; ' ORDER BY test_name)`)} AS excerpt
      FROM verifications
      WHERE run_id IN (SELECT run_id FROM scope) AND status = 'failed'
        AND regexp_matches(test_name || ' ' || coalesce(message, ''), ${sqlText(ARTIFACT_TEST)})
      GROUP BY run_id
      UNION ALL
      SELECT run_id, CAST(NULL AS INTEGER), CAST([] AS INTEGER[]), ${squeeze(`'run ended: ' || failure_reason`)}
      FROM scope
      WHERE regexp_matches(coalesce(failure_reason, ''), ${sqlText(ARTIFACT_TEST)})
        AND run_id NOT IN (SELECT run_id FROM verifications WHERE status = 'failed')`,
  },
  {
    mechanism: 'lost-environment-state',
    thresholds: [],
    needs: ['calls'],
    sql: `
      WITH variables AS (
        SELECT run_id, step, call_seq, regexp_extract(assignment, 'export\\s+([A-Za-z_][A-Za-z0-9_]*)=', 1) AS name,
               trim(regexp_extract(assignment, '=(.*)$', 1), '"''') AS value
        FROM (SELECT run_id, step, call_seq,
                     unnest(regexp_extract_all(command, 'export\\s+[A-Za-z_][A-Za-z0-9_]*=("[^"]*"|''[^'']*''|[^\\s;&|]*)')) AS assignment
              FROM calls WHERE command LIKE '%export %')
      ), folders AS (
        SELECT run_id, step, call_seq, folder
        FROM (SELECT run_id, step, call_seq,
                     unnest(regexp_extract_all(command, '(?:^|[;&|]\\s*)(?:cd|mkdir(?:\\s+-p)?)\\s+([^\\s;&|]+)', 1)) AS folder
              FROM calls WHERE NOT is_failure AND (command LIKE '%cd %' OR command LIKE '%mkdir %'))
        WHERE length(folder) >= 2 AND folder NOT IN ('..', '~', '-p', '$HOME')
      ), environments AS (
        SELECT run_id, step, call_seq, command,
               regexp_matches(command, '(source|\\.)\\s+\\S*activate\\b|conda\\s+activate|workon\\s|nvm\\s+use|pyenv\\s+(shell|activate)|poetry\\s+shell') AS activates
        FROM calls
        WHERE NOT is_failure
          AND regexp_matches(command, '(source|\\.)\\s+\\S*activate\\b|conda\\s+activate|workon\\s|nvm\\s+use|pyenv\\s+(shell|activate)|poetry\\s+shell|(pip3?|python3? -m pip|npm|yarn|apt(-get)?|conda|gem|cargo|go)\\s+(install|add|get)\\b')
      ), losses AS (
        SELECT f.run_id, f.step, s.step AS setup_step, f.call_seq, 'variable ' || s.name AS what, f.failure_excerpt
        FROM calls f JOIN variables s ON f.run_id = s.run_id AND f.call_seq > s.call_seq
        WHERE f.is_failure AND length(s.name) > 0
          AND regexp_matches(f.output_excerpt, '(?m)\\b' || s.name || '\\b[^\\n]{0,20}(unbound variable|is not set|parameter null or not set|must be set|is empty|is undefined|undefined variable|is not defined\\s*$|is not defined\\.)')
          AND NOT contains(coalesce(f.command, ''), s.name || '=')
          AND (length(s.value) < 2 OR NOT contains(f.output_excerpt, s.value))
        UNION ALL
        SELECT f.run_id, f.step, s.step, f.call_seq, 'directory ' || s.folder, f.failure_excerpt
        FROM calls f JOIN folders s ON f.run_id = s.run_id AND f.call_seq > s.call_seq
        WHERE f.failure_kind = 'missing-path'
          AND (contains(f.output_excerpt, s.folder || ': No such file') OR contains(f.output_excerpt, s.folder || ''': No such file')
               OR contains(f.output_excerpt, 'can''t cd to ' || s.folder))
        UNION ALL
        SELECT f.run_id, f.step, s.step, f.call_seq,
               CASE WHEN s.activates THEN 'activated environment' ELSE 'installed ' || f.missing_name END, f.failure_excerpt
        FROM calls f JOIN environments s ON f.run_id = s.run_id AND f.call_seq > s.call_seq
        WHERE f.failure_kind = 'missing-dependency' AND f.missing_name IS NOT NULL
          AND (s.activates OR regexp_matches(s.command, '\\b' || regexp_escape(f.missing_name) || '\\b'))
          AND NOT regexp_matches(coalesce(f.command, ''), 'activate|install')
      )
      SELECT run_id, min(step) AS first_step, list_sort(list_distinct(list(setup_step) || list(step)))[1:${EVIDENCE_CAP}] AS evidence_steps,
             ${squeeze(`(list(what || ' set up at step ' || setup_step || ', missing at step ' || step || ': ' || coalesce(failure_excerpt, '') ORDER BY call_seq, setup_step, what))[1]`)} AS excerpt
      FROM losses GROUP BY run_id`,
  },
  {
    mechanism: 'missing-dependency',
    thresholds: ['minDependencyFailures'],
    needs: ['calls'],
    sql: `
      SELECT run_id, min(step) AS first_step, ${evidence('step')} AS evidence_steps,
             ${squeeze(`coalesce(arg_min(failure_excerpt, call_seq), '') || CASE WHEN count(*) > 1 THEN ' (' || count(*) || ' calls)' ELSE '' END`)} AS excerpt
      FROM calls WHERE failure_kind = 'missing-dependency'
      GROUP BY run_id HAVING count(*) >= min_dependency_failures`,
  },
  {
    mechanism: 'exploration-without-implementation',
    thresholds: ['minCalls', 'minReadShare', 'maxImplementationCalls'],
    needs: ['calls'],
    sql: `
      SELECT run_id, min(step) FILTER (WHERE action_kind = 'read') AS first_step,
             list_sort(list_distinct(list(step) FILTER (WHERE action_kind = 'read')))[1:${EVIDENCE_CAP}] AS evidence_steps,
             ${squeeze(`count(*) FILTER (WHERE action_kind = 'read') || ' of ' || count(*) || ' calls only read or navigated, '
               || count(*) FILTER (WHERE action_kind IN ('edit', 'write')) || ' changed files; reads: '
               || string_agg(DISTINCT split_part(command_key, ' ', 1), ', ' ORDER BY split_part(command_key, ' ', 1)) FILTER (WHERE action_kind = 'read')`)} AS excerpt
      FROM calls GROUP BY run_id
      HAVING count(*) >= min_calls
         AND count(*) FILTER (WHERE action_kind = 'read') >= min_read_share * count(*)
         AND count(*) FILTER (WHERE action_kind IN ('edit', 'write')) <= max_implementation_calls`,
  },
  {
    mechanism: 'budget-exhaustion',
    thresholds: [],
    needs: ['last_steps'],
    sql: `
      SELECT s.run_id, l.step AS first_step,
             CASE WHEN l.step IS NULL THEN CAST([] AS INTEGER[]) ELSE [l.step] END AS evidence_steps,
             ${squeeze(`'run ended: ' || s.failure_reason`)} AS excerpt
      FROM scope s LEFT JOIN last_steps l USING (run_id)
      WHERE regexp_matches(coalesce(s.failure_reason, ''), ${sqlText(BUDGET_REASON)})`,
  },
  {
    mechanism: 'malformed-tool-call',
    thresholds: ['minMalformed'],
    needs: ['calls'],
    sql: `
      WITH malformed AS (
        SELECT run_id, step, call_seq AS seq, failure_excerpt AS excerpt FROM calls WHERE failure_kind = 'malformed-call'
        UNION ALL
        SELECT run_id, CAST(json_extract_string(data, '$.step') AS INTEGER), seq,
               ${squeeze(`regexp_extract(json_extract_string(data, '$.output'), ${sqlText(`(?m)[^\n]*(?:${MALFORMED_OUTPUT})[^\n]*`)})`)}
        FROM events
        WHERE type = 'tool-result' AND run_id IN (SELECT run_id FROM scope) AND NOT contains(CAST(data AS VARCHAR), '"callId"')
          AND json_extract_string(data, '$.callId') IS NULL
          AND regexp_matches(json_extract_string(data, '$.output'), ${sqlText(`(?m)${MALFORMED_OUTPUT}`)})
      ), malformed_runs AS (
        SELECT run_id, min(step) AS first_step, ${evidence('step')} AS evidence_steps,
               ${squeeze(`coalesce((list(excerpt ORDER BY seq, excerpt))[1], '') || CASE WHEN count(*) > 1 THEN ' (' || count(*) || ' malformed calls)' ELSE '' END`)} AS excerpt
        FROM malformed GROUP BY run_id HAVING count(*) >= min_malformed
      )
      SELECT * FROM malformed_runs
      UNION ALL
      SELECT run_id, CAST(NULL AS INTEGER), CAST([] AS INTEGER[]), ${squeeze(`'run ended: ' || failure_reason`)}
      FROM scope
      WHERE regexp_matches(coalesce(failure_reason, ''), ${sqlText(MALFORMED_REASON)})
        AND run_id NOT IN (SELECT run_id FROM malformed_runs)`,
  },
  {
    mechanism: 'premature-completion',
    thresholds: [],
    needs: ['calls'],
    sql: `
      WITH claims AS (
        SELECT run_id, step, call_seq AS seq, 'called ' || tool AS claim FROM calls WHERE action_kind = 'completion'
        UNION ALL
        SELECT run_id, CAST(json_extract_string(data, '$.step') AS INTEGER), seq, 'set task_complete'
        FROM events
        WHERE type = 'step-create' AND run_id IN (SELECT run_id FROM scope WHERE outcome = 'failed')
          AND contains(CAST(data AS VARCHAR), '"taskComplete":true')
        UNION ALL
        SELECT run_id, step, seq, 'said "' || regexp_extract(message, ${sqlText(COMPLETION_CLAIM)}) || '"'
        FROM (SELECT run_id, max(step) AS step, arg_max(message, step) AS message, arg_max(seq, step) AS seq
              FROM steps WHERE role = 'agent' AND run_id IN (SELECT run_id FROM scope WHERE outcome = 'failed')
              GROUP BY run_id)
        WHERE regexp_matches(message, ${sqlText(COMPLETION_CLAIM)})
      )
      SELECT c.run_id, min(c.step) AS first_step, ${evidence('c.step')} AS evidence_steps,
             ${squeeze(`(list(c.claim ORDER BY c.seq DESC, c.claim))[1] || ' at step ' || max(c.step) || ', but the verifier failed' || coalesce(': ' || any_value(s.failure_reason), '')`)} AS excerpt
      FROM claims c JOIN scope s USING (run_id)
      WHERE s.outcome = 'failed'
      GROUP BY c.run_id`,
  },
];

const SCOPE_PARAMETERS = ['include_passing := false', 'for_model := NULL', 'for_split := NULL'];

function parameterList(thresholds: readonly (keyof DetectorThresholds)[]): string {
  return [
    ...SCOPE_PARAMETERS,
    ...thresholds.map((name) => `${PARAMETER_NAMES[name]} := ${defaultThresholds[name]}`),
  ].join(', ');
}

function ctes(needs: ReadonlySet<Cte>): string {
  const parts = [
    `scope AS (
  SELECT run_id, task, model, outcome, split, harness_version, dataset, failure_reason
  FROM runs
  WHERE outcome <> 'invalid' AND (outcome = 'failed' OR include_passing)
    AND (for_model IS NULL OR model = for_model) AND (for_split IS NULL OR split = for_split)
)`,
  ];
  if (needs.has('calls')) {
    parts.push(`calls AS MATERIALIZED (${classifiedToolCalls('tc.run_id IN (SELECT run_id FROM scope)')})`);
  }
  if (needs.has('last_steps')) {
    parts.push(`last_steps AS (
  SELECT run_id, max(step) AS step
  FROM (SELECT run_id, step FROM steps WHERE run_id IN (SELECT run_id FROM scope)
        UNION ALL SELECT run_id, step FROM tool_calls WHERE run_id IN (SELECT run_id FROM scope))
  GROUP BY run_id
)`);
  }
  return parts.join(',\n');
}

function macroName(mechanism: Mechanism): string {
  return `detect_${mechanism.replaceAll('-', '_')}`;
}

function detectionQuery(detectors: readonly DetectorSql[]): string {
  const needs = new Set(detectors.flatMap((detector) => detector.needs));
  const found = detectors
    .map(
      (detector) =>
        `SELECT run_id, ${sqlText(detector.mechanism)} AS mechanism, CAST(first_step AS INTEGER) AS first_step,
       CAST(evidence_steps AS INTEGER[]) AS evidence_steps, excerpt
FROM (${detector.sql})`,
    )
    .join('\nUNION ALL\n');
  return `WITH ${ctes(needs)}
SELECT d.run_id, d.mechanism, d.first_step, d.evidence_steps, coalesce(d.excerpt, '') AS excerpt,
       s.task, s.model, s.outcome, s.split, s.harness_version, s.dataset
FROM (${found}) d
JOIN scope s USING (run_id)
ORDER BY d.run_id, d.mechanism`;
}

/** The DDL of the detector macros: `mechanism_ids()`, one `detect_<mechanism>` per mechanism, `detect_mechanisms`. */
export function detectorMacros(temporary = false): string[] {
  const create = temporary ? 'CREATE OR REPLACE TEMP MACRO' : 'CREATE OR REPLACE MACRO';
  const statements = [`${create} mechanism_ids() AS [${mechanisms.map(sqlText).join(', ')}]`];
  for (const detector of DETECTORS) {
    statements.push(
      `${create} ${macroName(detector.mechanism)}(${parameterList(detector.thresholds)}) AS TABLE\n${detectionQuery([detector])}`,
    );
  }
  const allThresholds = Object.keys(defaultThresholds) as (keyof DetectorThresholds)[];
  statements.push(
    `${create} detect_mechanisms(${parameterList(allThresholds)}) AS TABLE\n${detectionQuery(DETECTORS)}`,
  );
  return statements;
}

/** The names of the detector macros, for the reference page. */
export const DETECTOR_MACROS = [
  ...mechanisms.map((mechanism) => ({ name: macroName(mechanism), mechanism })),
  { name: 'detect_mechanisms', mechanism: null },
];

/** The threshold parameters of a mechanism's macro, with their defaults. */
export function macroParameters(mechanism: Mechanism): Record<string, number> {
  const detector = DETECTORS.find((entry) => entry.mechanism === mechanism);
  return Object.fromEntries(
    (detector?.thresholds ?? []).map((name) => [PARAMETER_NAMES[name], defaultThresholds[name]]),
  );
}

export interface DetectOptions {
  thresholds?: Partial<DetectorThresholds>;
  /** Only runs of this model. */
  model?: string;
  /** Only runs of this split. */
  split?: string;
  /** Also mine valid runs that did not fail (passed, unknown, unfinished): what a fix must not fire on. */
  includePassing?: boolean;
}

let optionsCounter = 0;

interface DetectionRow {
  run_id: string;
  mechanism: string;
  first_step: number | null;
  evidence_steps: number[] | null;
  excerpt: string;
  task: string | null;
  model: string | null;
  outcome: string;
  split: string | null;
  harness_version: string | null;
  dataset: string | null;
}

/**
 * Runs every detector over the log's failed runs (with `includePassing`, over every valid run) and returns the
 * detections ordered by run and mechanism, at most one per run and mechanism. Thresholds are bound as values, never
 * spliced into SQL; a threshold that is not a finite number is a programming error and throws.
 */
export async function detectMechanisms(log: EventLog, options: DetectOptions = {}): Promise<Detection[]> {
  await prepareAnalytics(log.database);
  const thresholds = { ...defaultThresholds, ...options.thresholds };
  const names = Object.keys(defaultThresholds) as (keyof DetectorThresholds)[];
  for (const name of names) {
    if (!Number.isFinite(thresholds[name])) throw new TypeError(`Threshold ${name} must be a finite number`);
  }
  // The options go into a temporary table whose values the macro reads as scalar subqueries: DuckDB plans a statement
  // with bound parameters less well (about half the speed here), and the values stay bound, never spliced.
  const table = `detection_options_${++optionsCounter}`;
  const columns = ['include_passing', 'for_model', 'for_split', ...names.map((name) => PARAMETER_NAMES[name])];
  const types = ['BOOLEAN', 'VARCHAR', 'VARCHAR', ...names.map(() => 'DOUBLE')];
  const values = [
    options.includePassing ?? false,
    options.model ?? null,
    options.split ?? null,
    ...names.map((name) => thresholds[name]),
  ];
  await log.query(
    `CREATE OR REPLACE TEMP TABLE ${table} AS SELECT ${columns.map((column, index) => `CAST($${index + 1} AS ${types[index]}) AS ${column}`).join(', ')}`,
    values,
  );
  let rows: DetectionRow[];
  try {
    rows = await log.query<DetectionRow & Record<string, unknown>>(
      `SELECT * FROM detect_mechanisms(${columns.map((column) => `${column} := (SELECT ${column} FROM ${table})`).join(', ')})`,
    );
  } finally {
    await log.query(`DROP TABLE IF EXISTS ${table}`);
  }
  return rows.map((row) => ({
    runId: row.run_id,
    mechanism: row.mechanism as Mechanism,
    firstStep: row.first_step,
    evidenceSteps: row.evidence_steps ?? [],
    excerpt: row.excerpt,
    task: row.task,
    model: row.model,
    outcome: row.outcome,
    split: row.split,
    harnessVersion: row.harness_version,
    dataset: row.dataset,
  }));
}
