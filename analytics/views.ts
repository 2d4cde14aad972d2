/**
 * The analyst views: stable, documented names over the projections, the mining tables and the diagnosis events
 * (`analytics/README.md` lists every column). Each is `CREATE OR REPLACE VIEW` without parameters; the detectors with
 * their thresholds are table macros (`analytics/detectors.ts`).
 *
 * Tool calls are classified here once, in SQL, because both analysts (`tool_call_view`) and the detectors need the
 * same answer to "did this call fail, and how?". Most sources carry no exit code (SWE-agent, Terminal-Bench 1,
 * ATIF), so a failure is read from the output text as well: `command not found`, `No such file or directory`, a
 * traceback, a rejected edit, a shell syntax error. An explicit exit code of 0 always wins.
 */

/** Wraps text as a SQL string literal. Only ever used on constants of this module, never on user input. */
export function sqlText(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/**
 * Patterns that name how a tool call failed, tried in this order; the first that matches gives `failure_kind`. They
 * run with RE2 in multi-line mode (`^` is the start of any line of the output).
 */
export const FAILURE_PATTERNS = [
  {
    kind: 'edit-rejected',
    pattern:
      'Your proposed edit has introduced new syntax error|[Ee]dit (was|has been) rejected|No replacement was performed',
  },
  {
    kind: 'malformed-call',
    pattern: String.raw`^Usage: |^(/bin/)?(ba)?sh: (-c: )?(line \d+: )?(syntax error|unexpected EOF)|^(/bin/)?(ba)?sh: (line \d+: )?([A-Z][A-Za-z]+|EOF|[^\s:]*\.|C-[a-z]): command not found|parsing errors?:|not formatted correctly|^(ERROR: |Error: )?[Ii]nvalid JSON|No valid JSON|[Uu]nknown (command|tool)|[Uu]nrecognized (command|tool)`,
  },
  {
    kind: 'missing-dependency',
    pattern: String.raw`: command not found|^(/bin/)?(ba)?sh: \d+: [^\s:]+: not found|No module named|ModuleNotFoundError|Cannot find module|Unable to locate package|error while loading shared libraries|No matching distribution found|is not installed`,
  },
  { kind: 'timeout', pattern: '(?i:timed out)|TimeoutExpired|[Dd]eadline exceeded' },
  {
    kind: 'missing-path',
    pattern: String.raw`No such file or directory|cannot access|^(File|Directory) .* not found|does not exist|FileNotFoundError|cannot stat|can't cd to`,
  },
  {
    kind: 'crash',
    pattern: String.raw`Traceback \(most recent call last\)|Exception in thread|^panic: |Segmentation fault|core dumped|^\w+(Error|Exception): `,
  },
  {
    kind: 'error',
    pattern: String.raw`^\s*(error|Error|ERROR|fatal|FATAL|E)(\[[\w-]+\])?: |^\S+:\d+(:\d+)?: (fatal )?error|BUILD FAILURE|npm ERR!|^FAILED|Permission denied|^make(\[\d+\])?: \*\*\*|(?i:failed with exit (code|status))`,
  },
] as const;

/** Outputs that list a file or search hits: their text is code, not an error message, so it is not scanned. */
const LISTING_OUTPUT = String.raw`^(\[File: |Found \d+ matches|No matches found)`;

/** Tools that only declare the task finished. */
export const COMPLETION_TOOLS = [
  'submit',
  'finish',
  'mark_task_complete',
  'task_complete',
  'attempt_completion',
  'complete_task',
  'done',
];
/** Tools that edit files as a structured call (not a shell command). */
export const EDIT_TOOLS = [
  'edit',
  'create',
  'write',
  'write_file',
  'edit_file',
  'str_replace',
  'str_replace_based_edit_tool',
  'insert',
  'apply_patch',
  'replace',
  'append',
];
/** Tools that page through a file: the same call moves on each time, so repeating it is no loop. */
export const PAGINATION_TOOLS = ['scroll_down', 'scroll_up'];
/** Tools that only read or navigate. */
export const READ_TOOLS = [
  'open',
  'goto',
  'scroll_down',
  'scroll_up',
  'search_dir',
  'search_file',
  'find_file',
  'view',
  'read',
  'read_file',
  'view_file',
  'list_files',
  'list_dir',
  'ls',
  'glob',
  'grep',
  'search',
  'cat',
];

/** A shell command that changes files: in-place edits, copies, moves, redirects into a file (not /dev/null). */
const WRITE_COMMAND = String.raw`(^|[;&|(]\s*)(sed\s+-i|tee|mv|cp|rm|mkdir|touch|patch|git\s+(apply|commit|checkout|add|am)|chmod|ln)\b|(^|[^0-9&>])>>?\s*([A-Za-z0-9_.~$"']|/[^d])`;
/** A shell command that only reads: its first word (after an optional `cd DIR &&`) is a reading tool. */
const READ_COMMAND = String.raw`^\s*(cd\s+\S+\s*(&&|;)\s*)?(ls|cat|head|tail|less|more|grep|egrep|fgrep|rg|ag|find|pwd|wc|file|stat|which|whereis|type|tree|du|df|env|printenv|ps|diff|id|whoami|uname|history|locate|git\s+(status|log|diff|show|branch|grep)|sed\s+-n|awk|echo\s+\$|cd\s+\S+\s*$)`;
/** Commands of agents that end the task by printing a marker (mini-swe-agent). */
const COMPLETION_COMMAND = 'COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT|MINI_SWE_AGENT_FINAL_OUTPUT';

const sqlList = (values: readonly string[]) => values.map(sqlText).join(', ');

/** The text a call's failure is read from: its output and its error. */
const SIGNAL_TEXT = `coalesce(tc.output_excerpt, '') || CASE WHEN tc.error IS NULL THEN '' ELSE chr(10) || tc.error END`;
const ANY_FAILURE = `(?m)${FAILURE_PATTERNS.map((entry) => `(?:${entry.pattern})`).join('|')}`;

function failureKindCase(): string {
  const branches = FAILURE_PATTERNS.map(
    (entry) => `WHEN regexp_matches(signal_text, ${sqlText(`(?m)${entry.pattern}`)}) THEN ${sqlText(entry.kind)}`,
  ).join('\n      ');
  return `CASE
      WHEN exit_code = 0 AND error IS NULL THEN NULL
      WHEN is_listing OR NOT regexp_matches(signal_text, ${sqlText(ANY_FAILURE)})
        THEN CASE WHEN error IS NOT NULL THEN 'tool-error' WHEN exit_code <> 0 THEN 'exit-code' END
      ${branches}
    END`;
}

function failureExcerptCase(): string {
  const branches = FAILURE_PATTERNS.map(
    (entry) =>
      `WHEN ${sqlText(entry.kind)} THEN regexp_extract(signal_text, ${sqlText(`(?m)[^\n]*(?:${entry.pattern})[^\n]*`)})`,
  ).join('\n      ');
  return `CASE failure_kind
      ${branches}
      WHEN 'tool-error' THEN error
      WHEN 'exit-code' THEN 'exit code ' || exit_code || ': ' || coalesce(regexp_extract(output_excerpt, '([^\n]*\\S[^\n]*)\n*$', 1), '')
    END`;
}

/**
 * The rows of `tool_calls` (optionally restricted by a `WHERE` on its columns) with the derived columns every
 * detector reads: `command_key`, `action_kind`, `failure_kind`, `is_failure`, `failure_excerpt`, `missing_name`.
 */
export function classifiedToolCalls(where = 'TRUE'): string {
  return `
SELECT run_id, step, call_id, tool, arguments, command, exit_code, output_excerpt, output_chars, error, call_seq, result_seq,
       command_key, action_kind, failure_kind, failure_kind IS NOT NULL AS is_failure,
       CASE WHEN failure_kind IS NULL THEN NULL
            ELSE left(trim(regexp_replace(regexp_replace(${failureExcerptCase()}, '\\x1b\\[[0-9;?]*[A-Za-z]', '', 'g'), '\\s+', ' ', 'g')), 300)
       END AS failure_excerpt,
       CASE WHEN failure_kind = 'missing-dependency' THEN nullif(coalesce(
              nullif(regexp_extract(signal_text, '([A-Za-z0-9_.+-]+): command not found', 1), ''),
              nullif(regexp_extract(signal_text, 'No module named ''?([A-Za-z0-9_.]+)', 1), ''),
              regexp_extract(signal_text, 'Cannot find module ''([^'']+)''', 1)), '')
       END AS missing_name
FROM (
  SELECT *, ${failureKindCase()} AS failure_kind
  FROM (
    SELECT tc.*, ${SIGNAL_TEXT} AS signal_text,
           regexp_matches(coalesce(tc.output_excerpt, ''), ${sqlText(LISTING_OUTPUT)}) AS is_listing,
           left(coalesce(nullif(regexp_replace(trim(split_part(tc.command, chr(10), 1)), '\\s+', ' ', 'g'), ''),
                         tc.tool || ' ' || coalesce(CAST(tc.arguments AS VARCHAR), '')), 200) AS command_key,
           CASE
             WHEN lower(tc.tool) IN (${sqlList(COMPLETION_TOOLS)}) THEN 'completion'
             WHEN tc.command IS NOT NULL AND regexp_matches(tc.command, ${sqlText(COMPLETION_COMMAND)}) THEN 'completion'
             WHEN lower(tc.tool) = 'str_replace_editor' THEN
               CASE WHEN json_extract_string(tc.arguments, '$.command') = 'view' THEN 'read' ELSE 'edit' END
             WHEN lower(tc.tool) IN (${sqlList(EDIT_TOOLS)}) THEN 'edit'
             WHEN lower(tc.tool) IN (${sqlList(READ_TOOLS)}) THEN 'read'
             WHEN tc.command IS NULL THEN 'other'
             WHEN regexp_matches(tc.command, ${sqlText(WRITE_COMMAND)}) THEN 'write'
             WHEN regexp_matches(tc.command, ${sqlText(READ_COMMAND)}) THEN 'read'
             ELSE 'other'
           END AS action_kind
    FROM tool_calls tc
    WHERE ${where}
  )
)`;
}

const RUN_CONTEXT = 'r.task, r.model, r.outcome, r.split, r.dataset, r.harness_version';

/** The views, in creation order (later ones read earlier ones). Keys are the view names. */
export function viewDefinitions(): Record<string, string> {
  return {
    run_summary: `
SELECT r.*,
       r.outcome <> 'invalid' AS is_valid,
       r.outcome IN ('passed', 'failed') AS is_counted,
       r.outcome = 'failed' AS is_failed,
       r.outcome = 'passed' AS is_passed,
       date_diff('millisecond', r.started_at, r.ended_at) / 1000.0 AS duration_seconds,
       coalesce(r.prompt_tokens, 0) + coalesce(r.completion_tokens, 0) AS total_tokens,
       CAST(coalesce(v.failed_tests, 0) AS INTEGER) AS failed_tests,
       CAST(coalesce(v.passed_tests, 0) AS INTEGER) AS passed_tests,
       v.failed_test_names
FROM runs r
LEFT JOIN (
  SELECT run_id, count(*) FILTER (WHERE status = 'failed') AS failed_tests,
         count(*) FILTER (WHERE status = 'passed') AS passed_tests,
         list(test_name ORDER BY test_name) FILTER (WHERE status = 'failed') AS failed_test_names
  FROM verifications GROUP BY run_id
) v USING (run_id)`,
    failed_runs: `SELECT * FROM run_summary WHERE outcome = 'failed'`,
    step_view: `
SELECT s.run_id, s.step, s.role, s.message, s.reasoning, coalesce(s.model, r.model) AS model, s.prompt_tokens,
       s.completion_tokens, s.cached_tokens, s.cost_usd, s.time, s.seq,
       CAST(coalesce(c.tool_calls, 0) AS INTEGER) AS tool_calls,
       r.task, r.model AS run_model, r.outcome, r.split, r.dataset, r.harness_version
FROM steps s
LEFT JOIN runs r USING (run_id)
LEFT JOIN (SELECT run_id, step, count(*) AS tool_calls FROM tool_calls GROUP BY ALL) c USING (run_id, step)`,
    tool_call_view: `
SELECT c.run_id, c.step, c.call_id, c.tool, c.arguments, c.command, c.exit_code, c.output_excerpt, c.output_chars,
       c.error, c.call_seq, c.result_seq, c.command_key, c.action_kind, c.failure_kind, c.is_failure,
       c.failure_excerpt, c.missing_name, ${RUN_CONTEXT}
FROM (${classifiedToolCalls()}) c
LEFT JOIN runs r USING (run_id)`,
    detected_mechanisms: `SELECT * FROM detect_mechanisms()`,
    diagnoses: `
SELECT run_id, d.promptVersion AS prompt_version, d.model, d.terminalCause AS terminal_cause, d.criticality,
       d.mechanism, d.evidenceSteps AS evidence_steps, d.reasoning, seq
FROM (
  SELECT run_id, seq,
         json_transform(data, '{"promptVersion":"VARCHAR","model":"VARCHAR","terminalCause":"VARCHAR","criticality":"VARCHAR","mechanism":"VARCHAR","evidenceSteps":"INTEGER[]","reasoning":"VARCHAR"}') AS d
  FROM events WHERE type = 'diagnosis-create'
)
QUALIFY row_number() OVER (PARTITION BY run_id, d.promptVersion, d.model ORDER BY seq DESC) = 1`,
    weakness_clusters_ranked: `
SELECT c.mining_id, c.rank, c.cluster_id, c.label, c.mode, c.criticality, c.failure_count, c.run_count, c.task_count,
       c.mechanisms, c.tasks, c.models, c.score, c.card, c.created_at,
       c.mining_id = first(c.mining_id ORDER BY c.created_at DESC) OVER () AS is_latest_mining
FROM weakness_clusters c`,
    cluster_evidence: `
SELECT m.mining_id, m.cluster_id, c.rank, c.label, m.run_id, m.mechanism, m.first_step, m.evidence_steps, m.excerpt,
       ${RUN_CONTEXT}
FROM weakness_cluster_members m
LEFT JOIN weakness_clusters c USING (mining_id, cluster_id)
LEFT JOIN runs r USING (run_id)`,
    model_profiles: `
WITH failed AS (
  SELECT model, count(*) AS failed_runs FROM runs WHERE outcome = 'failed' GROUP BY model
), hits AS (
  SELECT model, mechanism, count(DISTINCT run_id) AS runs_with_mechanism FROM detected_mechanisms GROUP BY ALL
), grid AS (
  SELECT f.model, m.mechanism, f.failed_runs, coalesce(h.runs_with_mechanism, 0) AS k
  FROM failed f
  CROSS JOIN (SELECT unnest(mechanism_ids()) AS mechanism) m
  LEFT JOIN hits h ON h.model IS NOT DISTINCT FROM f.model AND h.mechanism = m.mechanism
), rated AS (
  SELECT *, k / failed_runs AS p, 1.959963984540054 AS z FROM grid
)
SELECT model, mechanism, CAST(failed_runs AS INTEGER) AS failed_runs, CAST(k AS INTEGER) AS runs_with_mechanism,
       p AS rate,
       greatest(0.0, ((p + z * z / (2 * failed_runs)) - z * sqrt(p * (1 - p) / failed_runs + z * z / (4 * failed_runs * failed_runs))) / (1 + z * z / failed_runs)) AS rate_low,
       least(1.0, ((p + z * z / (2 * failed_runs)) + z * sqrt(p * (1 - p) / failed_runs + z * z / (4 * failed_runs * failed_runs))) / (1 + z * z / failed_runs)) AS rate_high
FROM rated
ORDER BY model NULLS LAST, mechanism`,
  };
}

/** The names of the views, in creation order. */
export const VIEW_NAMES = Object.keys(viewDefinitions());
