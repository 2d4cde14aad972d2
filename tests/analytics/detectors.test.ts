import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Detection, detectMechanisms, mechanisms } from '../../analytics/detectors.js';
import { installAnalytics } from '../../analytics/schema.js';
import { appendGeneratedRuns } from '../../bench/generate-runs.js';
import { EventLog, type TraceEvent } from '../../core/index.js';

interface CallSpec {
  command?: string;
  tool?: string;
  output?: string;
  exitCode?: number;
  error?: string;
  message?: string;
}

interface RunSpec {
  outcome?: 'passed' | 'failed' | 'invalid';
  model?: string;
  task?: string;
  split?: string;
  failureReason?: string;
  calls?: CallSpec[];
  tests?: { name: string; status: 'passed' | 'failed'; message?: string }[];
  /** Results without a call id (a harness's parse error), by step. */
  orphanResults?: { step: number; output: string }[];
}

/** A run as events: one agent step per call, then verification and end. */
function run(runId: string, spec: RunSpec): TraceEvent[] {
  const outcome = spec.outcome ?? 'failed';
  const events: TraceEvent[] = [
    {
      id: `${runId}#start`,
      runId,
      type: 'run-start',
      data: { task: spec.task ?? 'task-1', model: spec.model ?? 'model-a', split: spec.split ?? 'held-in' },
    },
  ];
  (spec.calls ?? []).forEach((call, index) => {
    const step = index + 1;
    events.push({
      id: `${runId}#step-${step}`,
      runId,
      type: 'step-create',
      data: { step, role: 'agent', message: call.message ?? `Step ${step}.` },
    });
    const command = call.command ?? '';
    events.push({
      id: `${runId}#call-${step}`,
      runId,
      type: 'tool-call',
      data: {
        step,
        callId: `c${step}`,
        tool: call.tool ?? 'bash',
        arguments: { command },
        ...(command === '' ? {} : { command }),
      },
    });
    events.push({
      id: `${runId}#result-${step}`,
      runId,
      type: 'tool-result',
      data: {
        step,
        callId: `c${step}`,
        output: call.output ?? '',
        ...(call.exitCode === undefined ? {} : { exitCode: call.exitCode }),
        ...(call.error === undefined ? {} : { error: call.error }),
      },
    });
  });
  for (const orphan of spec.orphanResults ?? []) {
    events.push({
      id: `${runId}#orphan-${orphan.step}`,
      runId,
      type: 'tool-result',
      data: { step: orphan.step, output: orphan.output },
    });
  }
  if (spec.tests) events.push({ id: `${runId}#verify`, runId, type: 'run-verify', data: { tests: spec.tests } });
  events.push({
    id: `${runId}#end`,
    runId,
    type: 'run-end',
    data: { outcome, ...(spec.failureReason === undefined ? {} : { failureReason: spec.failureReason }) },
  });
  return events;
}

const ok = (command: string, output = 'done'): CallSpec => ({ command, output, exitCode: 0 });
const reads = (count: number): CallSpec[] =>
  Array.from({ length: count }, (_, index) => ok(`cat src/file_${index}.py`, `line ${index}`));
const edit = ok("sed -i 's/a/b/' src/main.py", '');

/** Hand-made runs: for each detector a hit and a near miss just below its default threshold. */
const RUNS: Record<string, RunSpec> = {
  'repeat-hit': {
    calls: [
      edit,
      { command: 'make build', output: "make: *** No rule to make target 'build'.  Stop.", exitCode: 2 },
      ok('ls'),
      { command: 'make build', output: "make: *** No rule to make target 'build'.  Stop.", exitCode: 2 },
      { command: 'make  build', output: "make: *** No rule to make target 'build'.  Stop.", exitCode: 2 },
    ],
  },
  'repeat-text-only': {
    // Terminal-Bench 1 style: no exit codes, the failure is read from the output.
    calls: [
      edit,
      { command: 'cd /app/build', output: 'bash: cd: /app/build: No such file or directory' },
      { command: 'cd /app/build', output: 'bash: cd: /app/build: No such file or directory' },
      { command: 'cd /app/build', output: 'bash: cd: /app/build: No such file or directory' },
    ],
  },
  'repeat-near-miss': {
    calls: [
      edit,
      { command: 'make build', output: 'make: *** No rule.  Stop.', exitCode: 2 },
      { command: 'make build', output: 'make: *** No rule.  Stop.', exitCode: 2 },
      { command: 'make build', output: 'built', exitCode: 0 },
    ],
  },
  'edits-rejected': {
    calls: [1, 2, 3].map((line) => ({
      tool: 'edit',
      command: `edit ${line}:${line}\nfoo(`,
      output: 'Your proposed edit has introduced new syntax error(s). Please read this error message carefully.',
    })),
  },
  'loop-hit': { calls: [edit, ...Array.from({ length: 4 }, () => ok('cat config.yaml', 'port: 1'))] },
  'loop-near-miss': { calls: [edit, ...Array.from({ length: 3 }, () => ok('cat config.yaml', 'port: 1'))] },
  'artifact-hit': {
    calls: [edit],
    tests: [
      { name: 'test_output_file_exists', status: 'failed', message: '/app/out.txt does not exist' },
      { name: 'test_values', status: 'failed', message: 'assert 1 == 2' },
    ],
  },
  'artifact-near-miss': {
    calls: [edit],
    tests: [
      { name: 'test_output_file_exists', status: 'passed' },
      { name: 'test_values', status: 'failed', message: 'assert 1 == 2' },
    ],
  },
  'lost-hit': {
    calls: [
      edit,
      ok('export DATA_DIR=/srv/data', ''),
      ok('ls'),
      { command: 'python process.py', output: 'Error: DATA_DIR is not set', exitCode: 1 },
    ],
  },
  'lost-near-miss': {
    // The variable kept its value (the error quotes it): set wrongly, not lost.
    calls: [
      edit,
      ok('export JAVA_HOME=/opt/jdk', ''),
      { command: './mvnw test', output: 'Error: JAVA_HOME is not defined correctly: /opt/jdk/bin/java', exitCode: 1 },
    ],
  },
  'dependency-hit': { calls: [edit, { command: 'jq . a.json', output: 'bash: jq: command not found', exitCode: 127 }] },
  'dependency-module': {
    calls: [edit, { command: 'python a.py', output: "ModuleNotFoundError: No module named 'yaml'" }],
  },
  'explore-hit': { calls: reads(10) },
  'explore-near-miss': { calls: reads(9) },
  'explore-with-edit': { calls: [...reads(12), edit] },
  'budget-hit': { calls: [edit, ok('ls')], failureReason: 'unresolved (exit_status: submitted (exit_cost))' },
  'budget-near-miss': { calls: [edit], failureReason: 'failed tests: test_timeout_handling' },
  'malformed-hit': {
    calls: [edit, { command: '', error: 'Invalid JSON in tool arguments: Unexpected token }' }],
  },
  'malformed-prose': {
    calls: [edit, { command: 'DISCUSSION\nLet me look', output: '/bin/bash: line 1: DISCUSSION: command not found' }],
  },
  'malformed-orphan': {
    calls: [edit, ok('ls')],
    orphanResults: [{ step: 2, output: 'Previous response had parsing errors:\nERROR: Missing required fields' }],
  },
  'premature-hit': {
    calls: [edit, { tool: 'submit', command: 'submit', output: 'Submitted.' }],
    tests: [{ name: 'test_values', status: 'failed', message: 'assert 1 == 2' }],
  },
  'premature-said': {
    calls: [edit, { command: 'ls', output: 'a b', exitCode: 0, message: 'The task is complete.' }],
  },
  'passed-with-loop': {
    outcome: 'passed',
    calls: [
      edit,
      ...Array.from({ length: 4 }, () => ok('cat config.yaml', 'port: 1')),
      { tool: 'submit', command: 'submit' },
    ],
  },
  'invalid-everything': {
    outcome: 'invalid',
    failureReason: 'exit_cost',
    calls: [
      ...reads(10),
      ...Array.from({ length: 4 }, () => ({ command: 'make', output: 'make: *** Stop.', exitCode: 2 })),
      { command: 'jq', output: 'bash: jq: command not found' },
    ],
    tests: [{ name: 'test_output_exists', status: 'failed' }],
  },
  'other-model': {
    model: 'model-b',
    split: 'held-out',
    calls: [edit, { command: 'jq . a.json', output: 'bash: jq: command not found', exitCode: 127 }],
  },
};

describe('failure-mechanism detectors on hand-made runs', () => {
  let log: EventLog;
  let found: Detection[];
  const hits = (runId: string) =>
    found
      .filter((detection) => detection.runId === runId)
      .map((detection) => detection.mechanism)
      .sort();
  const detection = (runId: string, mechanism: string) =>
    found.find((entry) => entry.runId === runId && entry.mechanism === mechanism);

  beforeAll(async () => {
    log = await EventLog.open(':memory:');
    await installAnalytics(log.database);
    await log.appendEvents(Object.entries(RUNS).flatMap(([runId, spec]) => run(runId, spec)));
    found = await detectMechanisms(log);
  });
  afterAll(() => log.close());

  it('finds a command that failed three times, by exit code or by its output, and not one that failed twice', () => {
    expect(hits('repeat-hit')).toEqual(['repeated-failed-command']);
    expect(detection('repeat-hit', 'repeated-failed-command')).toMatchObject({
      firstStep: 2,
      evidenceSteps: [2, 4, 5],
      task: 'task-1',
      model: 'model-a',
      outcome: 'failed',
      split: 'held-in',
    });
    expect(detection('repeat-hit', 'repeated-failed-command')?.excerpt).toContain('`make build` failed 3 times');
    expect(detection('repeat-text-only', 'repeated-failed-command')?.excerpt).toContain('No such file or directory');
    expect(hits('repeat-near-miss')).toEqual([]);
  });

  it('counts rejected edits of one edit tool as repeated failures', () => {
    expect(detection('edits-rejected', 'repeated-failed-command')).toMatchObject({ evidenceSteps: [1, 2, 3] });
    expect(detection('edits-rejected', 'repeated-failed-command')?.excerpt).toContain('edit (file edits)');
  });

  it('finds the same call repeated four times as a loop, not three', () => {
    expect(hits('loop-hit')).toEqual(['tool-call-loop']);
    expect(detection('loop-hit', 'tool-call-loop')).toMatchObject({ firstStep: 2, evidenceSteps: [2, 3, 4, 5] });
    expect(hits('loop-near-miss')).toEqual([]);
  });

  it('finds a missing output file only where the verifier reports one', () => {
    expect(detection('artifact-hit', 'missing-required-artifact')).toMatchObject({
      firstStep: null,
      evidenceSteps: [],
    });
    expect(detection('artifact-hit', 'missing-required-artifact')?.excerpt).toContain('/app/out.txt does not exist');
    expect(hits('artifact-near-miss')).toEqual([]);
  });

  it('finds a variable set in one call and missing in a later one, not one set to a wrong value', () => {
    expect(detection('lost-hit', 'lost-environment-state')).toMatchObject({ firstStep: 4, evidenceSteps: [2, 4] });
    expect(detection('lost-hit', 'lost-environment-state')?.excerpt).toContain('variable DATA_DIR set up at step 2');
    expect(hits('lost-near-miss')).not.toContain('lost-environment-state');
  });

  it('finds missing commands and modules as missing dependencies, and prose run as a command as malformed', () => {
    expect(detection('dependency-hit', 'missing-dependency')?.excerpt).toBe('bash: jq: command not found');
    expect(hits('dependency-module')).toEqual(['missing-dependency']);
    expect(hits('malformed-prose')).toEqual(['malformed-tool-call']);
  });

  it('finds ten read-only calls without an edit as exploration, not nine, not with an edit', () => {
    expect(detection('explore-hit', 'exploration-without-implementation')).toMatchObject({ firstStep: 1 });
    expect(detection('explore-hit', 'exploration-without-implementation')?.excerpt).toMatch(
      /^10 of 10 calls only read/,
    );
    expect(hits('explore-near-miss')).toEqual([]);
    expect(hits('explore-with-edit')).toEqual([]);
  });

  it('finds budget exhaustion from the run end reason, at the last step', () => {
    expect(detection('budget-hit', 'budget-exhaustion')).toMatchObject({ firstStep: 2, evidenceSteps: [2] });
    expect(hits('budget-near-miss')).toEqual([]);
  });

  it('finds malformed calls from tool errors and from harness parse errors without a call', () => {
    expect(detection('malformed-hit', 'malformed-tool-call')).toMatchObject({ firstStep: 2, evidenceSteps: [2] });
    expect(detection('malformed-hit', 'malformed-tool-call')?.excerpt).toContain('Invalid JSON in tool arguments');
    expect(detection('malformed-orphan', 'malformed-tool-call')?.excerpt).toContain('parsing errors');
  });

  it('finds a completion claim followed by a failed verification', () => {
    expect(detection('premature-hit', 'premature-completion')).toMatchObject({ firstStep: 2, evidenceSteps: [2] });
    expect(detection('premature-said', 'premature-completion')?.excerpt).toContain('said "task is complete"');
  });

  it('never mines invalid runs, and mines passing runs only when asked', async () => {
    expect(hits('invalid-everything')).toEqual([]);
    expect(hits('passed-with-loop')).toEqual([]);
    const all = await detectMechanisms(log, { includePassing: true });
    expect(all.filter((entry) => entry.runId === 'invalid-everything')).toEqual([]);
    expect(all.filter((entry) => entry.runId === 'passed-with-loop').map((entry) => entry.mechanism)).toEqual([
      'tool-call-loop',
    ]);
    const [view] = await log.query<{ n: bigint }>(
      "SELECT count(*) AS n FROM detected_mechanisms WHERE outcome <> 'failed' OR run_id = 'invalid-everything'",
    );
    expect(Number(view?.n)).toBe(0);
  });

  it('changes its results with the thresholds', async () => {
    const looser = await detectMechanisms(log, { thresholds: { minFailures: 2, minRepeats: 3, minCalls: 9 } });
    const ids = (list: Detection[], mechanism: string) =>
      list.filter((entry) => entry.mechanism === mechanism).map((entry) => entry.runId);
    expect(ids(looser, 'repeated-failed-command')).toContain('repeat-near-miss');
    expect(ids(looser, 'tool-call-loop')).toContain('loop-near-miss');
    expect(ids(looser, 'exploration-without-implementation')).toContain('explore-near-miss');
    const stricter = await detectMechanisms(log, { thresholds: { minFailures: 4, minDependencyFailures: 2 } });
    expect(ids(stricter, 'repeated-failed-command')).toEqual([]);
    expect(ids(stricter, 'missing-dependency')).toEqual([]);
  });

  it('filters by model and split', async () => {
    const modelB = await detectMechanisms(log, { model: 'model-b' });
    expect(modelB.map((entry) => [entry.runId, entry.mechanism])).toEqual([['other-model', 'missing-dependency']]);
    const heldOut = await detectMechanisms(log, { split: 'held-out' });
    expect(heldOut.map((entry) => entry.runId)).toEqual(['other-model']);
  });

  it('exposes each detector as a SQL macro with named thresholds', async () => {
    const rows = await log.query<{ run_id: string }>(
      'SELECT run_id FROM detect_tool_call_loop(min_repeats := 3) ORDER BY run_id',
    );
    // Three identical calls now count, including the repeated `make build` and `cd /app/build` of other runs.
    expect(rows.map((row) => row.run_id)).toEqual([
      'loop-hit',
      'loop-near-miss',
      'repeat-near-miss',
      'repeat-text-only',
    ]);
    const passing = await log.query<{ run_id: string }>(
      'SELECT run_id FROM detect_tool_call_loop(include_passing := true) ORDER BY run_id',
    );
    expect(passing.map((row) => row.run_id)).toEqual(['loop-hit', 'passed-with-loop']);
  });

  it('points every evidence step at a real step or tool call of its run', async () => {
    const [row] = await log.query<{ n: bigint; dangling: bigint }>(`
      SELECT count(*) AS n, count(*) FILTER (WHERE NOT EXISTS (
               SELECT 1 FROM steps s WHERE s.run_id = d.run_id AND s.step = e.step
               UNION ALL SELECT 1 FROM tool_calls t WHERE t.run_id = d.run_id AND t.step = e.step)) AS dangling
      FROM detected_mechanisms d, unnest(d.evidence_steps) AS e(step)`);
    expect(Number(row?.n)).toBeGreaterThan(20);
    expect(Number(row?.dangling)).toBe(0);
  });
});

describe('detectors on a generated log with injected mechanisms', () => {
  let log: EventLog;
  let truth: Awaited<ReturnType<typeof appendGeneratedRuns>>;
  let found: Detection[];

  beforeAll(async () => {
    log = await EventLog.open(':memory:');
    truth = await appendGeneratedRuns(log, { runs: 300, seed: 11 });
    found = await detectMechanisms(log);
  }, 60_000);
  afterAll(() => log.close());

  it('recovers every injected mechanism of every failed run and finds nothing else', () => {
    const byRun = new Map<string, string[]>();
    for (const entry of found) byRun.set(entry.runId, [...(byRun.get(entry.runId) ?? []), entry.mechanism]);
    const failed = truth.filter((run) => run.outcome === 'failed');
    expect(failed.length).toBeGreaterThan(150);
    for (const run of failed)
      expect([run.runId, (byRun.get(run.runId) ?? []).sort()]).toEqual([run.runId, [...run.injected].sort()]);
    const injectedKinds = new Set(failed.flatMap((run) => run.injected));
    expect([...injectedKinds].sort()).toEqual([...mechanisms].sort());
  });

  it('never reports passing or invalid runs, although invalid ones carry injected mechanisms', () => {
    const notFailed = new Set(truth.filter((run) => run.outcome !== 'failed').map((run) => run.runId));
    expect(truth.some((run) => run.outcome === 'invalid' && run.injected.length > 0)).toBe(true);
    expect(found.filter((entry) => notFailed.has(entry.runId))).toEqual([]);
  });
});
