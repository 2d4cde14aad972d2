import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { Mechanism } from '../analytics/detectors.js';
import { type EventLog, seededRandom, type TraceEvent } from '../core/index.js';

/**
 * A seeded generator of realistic agent logs for benchmarks and tests: runs of about 100 events (start, ~32 steps with
 * one shell call each, verification, end) over a few models and tasks, with a known mix of passing runs, invalid
 * (infrastructure) runs, and failed runs into which failure mechanisms are injected. Each model leans towards its own
 * mechanisms, so model profiles differ. The same options give the same events, and every run says which mechanisms
 * were injected (`injected`), so the detectors' recall can be checked.
 */

export interface GenerateRunsOptions {
  runs: number;
  seed?: number;
  /** About how many events each run has (default 100; at least 20). */
  eventsPerRun?: number;
  /** Model names (default three). */
  models?: readonly string[];
  /** How many distinct tasks (default 40). */
  tasks?: number;
  /** Share of invalid runs (default 0.1) and of passing runs (default 0.3); the rest fail. */
  invalidShare?: number;
  passingShare?: number;
}

export interface GeneratedRun {
  runId: string;
  task: string;
  model: string;
  outcome: 'passed' | 'failed' | 'invalid';
  /** The mechanisms injected into this run (into invalid runs too, where they must never be found). */
  injected: Mechanism[];
  events: TraceEvent[];
}

const DEFAULT_MODELS = ['model-a', 'model-b', 'model-c'];

/** Per model, how likely each mechanism is in a failed run: model-a forgets outputs, model-b loops, model-c explores. */
const LEANINGS: Record<number, Partial<Record<Mechanism, number>>> = {
  0: {
    'missing-required-artifact': 0.5,
    'premature-completion': 0.3,
    'missing-dependency': 0.15,
    'budget-exhaustion': 0.1,
  },
  1: { 'repeated-failed-command': 0.45, 'tool-call-loop': 0.35, 'malformed-tool-call': 0.2, 'budget-exhaustion': 0.15 },
  2: {
    'exploration-without-implementation': 0.35,
    'lost-environment-state': 0.35,
    'missing-dependency': 0.2,
    'budget-exhaustion': 0.15,
  },
};

interface Call {
  tool: string;
  command: string;
  output: string;
  exitCode?: number;
  error?: string;
  message?: string;
}

const READS = [
  (n: number) => `ls -la src/pkg_${n}`,
  (n: number) => `cat src/module_${n}.py`,
  (n: number) => `grep -n "def handler_${n}" -r src`,
  (n: number) => `head -n 40 tests/test_case_${n}.py`,
];

function readCall(n: number): Call {
  const command = READS[n % READS.length]?.(n) ?? `ls src/pkg_${n}`;
  return {
    tool: 'bash',
    command,
    output: `def handler_${n}(request):\n    value = parse(request)\n    return render(value)\n# ${n} lines shown`,
    exitCode: 0,
  };
}

function writeCall(n: number): Call {
  return {
    tool: 'bash',
    command: `sed -i 's/limit = ${n}/limit = ${n + 1}/' src/module_${n}.py`,
    output: '',
    exitCode: 0,
  };
}

function testCall(n: number, passing: boolean): Call {
  return passing
    ? { tool: 'bash', command: `python -m pytest -q tests/test_case_${n}.py`, output: '4 passed in 0.31s', exitCode: 0 }
    : {
        tool: 'bash',
        command: `python -m pytest -q tests/test_case_${n}.py`,
        output: `F...\nFAILED tests/test_case_${n}.py::test_value - assert 3 == 4\n1 failed, 3 passed in 0.40s`,
        exitCode: 1,
      };
}

/** The calls of a run: filler that reads, edits and tests, with the injected mechanisms' calls spliced in. */
function planCalls(count: number, injected: readonly Mechanism[], next: () => number): Call[] {
  const exploring = injected.includes('exploration-without-implementation');
  const calls: Call[] = [];
  for (let index = 0; index < count; index++) {
    const n = index * 7 + Math.floor(next() * 5);
    const roll = next();
    if (exploring || roll < 0.55) calls.push(readCall(n));
    else if (roll < 0.8) calls.push(writeCall(n));
    else calls.push(testCall(n, roll < 0.95));
  }
  // Keep at least one edit in runs that do not explore, so exploration is never found by accident.
  if (!exploring && !calls.some((call) => call.command.startsWith('sed -i'))) calls[1] = writeCall(1);
  // Each mechanism gets its own block of calls, so no injection overwrites another (with ≥ 60 events per run).
  let cursor = 2 + Math.floor(next() * 3);
  const place = (at: number, call: Call) => {
    calls[Math.min(calls.length - 2, Math.max(1, at))] = call;
  };
  const blockSize: Partial<Record<Mechanism, number>> = {
    'repeated-failed-command': 6,
    'tool-call-loop': 6,
    'lost-environment-state': 5,
  };
  for (const mechanism of injected) {
    const at = cursor;
    cursor += (blockSize[mechanism] ?? 2) + Math.floor(next() * 3);
    switch (mechanism) {
      case 'repeated-failed-command':
        for (let repeat = 0; repeat < 3; repeat++) {
          place(at + repeat * 2, {
            tool: 'bash',
            command: 'make build',
            output: "make: *** No rule to make target 'build'.  Stop.",
            exitCode: 2,
          });
        }
        break;
      case 'tool-call-loop':
        for (let repeat = 0; repeat < 5; repeat++) {
          place(at + repeat, {
            tool: 'bash',
            command: 'cat config/settings.yaml',
            output: 'debug: false\nport: 8080',
            exitCode: 0,
          });
        }
        break;
      case 'lost-environment-state':
        place(at, { tool: 'bash', command: 'export DATA_DIR=/app/data', output: '', exitCode: 0 });
        place(at + 3, {
          tool: 'bash',
          command: 'python scripts/process.py',
          output: 'Error: DATA_DIR is not set\n',
          exitCode: 1,
        });
        break;
      case 'missing-dependency':
        place(at, {
          tool: 'bash',
          command: 'jq .items data.json',
          output: 'bash: jq: command not found',
          exitCode: 127,
        });
        break;
      case 'malformed-tool-call':
        place(at, {
          tool: 'bash',
          command: '',
          output: '',
          error: 'Invalid JSON in tool arguments: Unexpected token } at position 41',
        });
        break;
      case 'premature-completion':
        calls[calls.length - 1] = {
          tool: 'submit',
          command: 'submit',
          output: 'Submitted.',
          message: 'The task is complete.',
        };
        break;
      default:
        break;
    }
  }
  return calls;
}

function chooseMechanisms(modelIndex: number, next: () => number): Mechanism[] {
  const leaning = LEANINGS[modelIndex % 3] ?? {};
  const chosen: Mechanism[] = [];
  for (const [mechanism, probability] of Object.entries(leaning) as [Mechanism, number][]) {
    if (next() < probability) chosen.push(mechanism);
  }
  return chosen;
}

/** Yields the runs one by one, so a million events never sit in memory at once. */
export function* generateRuns(options: GenerateRunsOptions): Generator<GeneratedRun> {
  const next = seededRandom(options.seed ?? 1);
  const models = options.models ?? DEFAULT_MODELS;
  const taskCount = options.tasks ?? 40;
  const callCount = Math.max(6, Math.round(((options.eventsPerRun ?? 100) - 4) / 3));
  const invalidShare = options.invalidShare ?? 0.1;
  const passingShare = options.passingShare ?? 0.3;
  const base = Date.UTC(2026, 0, 1);
  for (let index = 0; index < options.runs; index++) {
    const runId = `gen:run-${String(index).padStart(6, '0')}`;
    const modelIndex = index % models.length;
    const model = models[modelIndex] ?? 'model-a';
    const task = `task-${String(Math.floor(next() * taskCount)).padStart(3, '0')}`;
    const roll = next();
    const outcome = roll < invalidShare ? 'invalid' : roll < invalidShare + passingShare ? 'passed' : 'failed';
    const injected = outcome === 'passed' ? [] : chooseMechanisms(modelIndex, next);
    const calls = planCalls(callCount, injected, next);
    const start = base + index * 600_000;
    const time = (offset: number) => new Date(start + offset * 1000).toISOString();
    const events: TraceEvent[] = [
      {
        id: `${runId}#start`,
        runId,
        type: 'run-start',
        time: time(0),
        data: {
          task,
          model,
          dataset: 'generated',
          agent: 'bench-agent',
          harnessVersion: 'h-base',
          split: index % 4 === 0 ? 'held-out' : 'held-in',
          attempt: 1,
          seed: index,
          instruction: 'Fix the failing handler and write the report to /app/output.txt.',
        },
      },
    ];
    calls.forEach((call, position) => {
      const step = position + 1;
      events.push({
        id: `${runId}#step-${step}`,
        runId,
        type: 'step-create',
        time: time(step * 3),
        data: {
          step,
          role: 'agent',
          message:
            call.message ??
            `Step ${step}: I will run \`${call.command.slice(0, 60)}\` and check what it prints before changing anything else.`,
          model,
          promptTokens: 1200 + step * 40,
          completionTokens: 60 + (step % 7) * 5,
        },
      });
      events.push({
        id: `${runId}#call-${step}`,
        runId,
        type: 'tool-call',
        time: time(step * 3 + 1),
        data: {
          step,
          callId: `c${step}`,
          tool: call.tool,
          arguments: call.command === '' ? { raw: '{"command": "ls",}' } : { command: call.command },
          ...(call.command === '' || call.tool !== 'bash' ? {} : { command: call.command }),
        },
      });
      events.push({
        id: `${runId}#result-${step}`,
        runId,
        type: 'tool-result',
        time: time(step * 3 + 2),
        data: {
          step,
          callId: `c${step}`,
          output: call.output,
          ...(call.exitCode === undefined ? {} : { exitCode: call.exitCode }),
          ...(call.error === undefined ? {} : { error: call.error }),
        },
      });
    });
    const artifactMissing = injected.includes('missing-required-artifact');
    const tests =
      outcome === 'passed'
        ? [
            { name: 'test_output_file_exists', status: 'passed' as const },
            { name: 'test_values_correct', status: 'passed' as const },
          ]
        : artifactMissing
          ? [
              { name: 'test_output_file_exists', status: 'failed' as const, message: '/app/output.txt does not exist' },
              { name: 'test_values_correct', status: 'failed' as const, message: 'no output to compare' },
            ]
          : [
              { name: 'test_output_file_exists', status: 'passed' as const },
              { name: 'test_values_correct', status: 'failed' as const, message: 'assert 3 == 4' },
            ];
    const end = calls.length * 3 + 5;
    if (outcome !== 'invalid') {
      events.push({
        id: `${runId}#verify`,
        runId,
        type: 'run-verify',
        time: time(end - 1),
        data: { reward: outcome === 'passed' ? 1 : 0, tests },
      });
    }
    const failureReason =
      outcome === 'invalid'
        ? 'environment_error: container failed to start'
        : outcome === 'passed'
          ? undefined
          : injected.includes('budget-exhaustion')
            ? 'agent_timeout'
            : 'tests failed';
    events.push({
      id: `${runId}#end`,
      runId,
      type: 'run-end',
      time: time(end),
      data: {
        outcome,
        reward: outcome === 'passed' ? 1 : 0,
        ...(failureReason === undefined ? {} : { failureReason }),
        promptTokens: 40_000 + calls.length * 1200,
        completionTokens: 2_500,
      },
    });
    yield { runId, task, model, outcome, injected, events };
  }
}

/** Appends the generated runs to a log in batches; returns the ground truth per run. */
export async function appendGeneratedRuns(
  log: EventLog,
  options: GenerateRunsOptions,
  batchRuns = 500,
): Promise<Omit<GeneratedRun, 'events'>[]> {
  const truth: Omit<GeneratedRun, 'events'>[] = [];
  let batch: TraceEvent[] = [];
  let inBatch = 0;
  for (const run of generateRuns(options)) {
    const { events, ...rest } = run;
    truth.push(rest);
    batch.push(...events);
    if (++inBatch >= batchRuns) {
      await log.appendEvents(batch);
      batch = [];
      inBatch = 0;
    }
  }
  if (batch.length > 0) await log.appendEvents(batch);
  return truth;
}

/** Writes the generated runs as native NDJSON (for `selfharness ingest`); returns the ground truth per run. */
export async function writeGeneratedRuns(
  file: string,
  options: GenerateRunsOptions,
): Promise<Omit<GeneratedRun, 'events'>[]> {
  const out = createWriteStream(file);
  const truth: Omit<GeneratedRun, 'events'>[] = [];
  for (const run of generateRuns(options)) {
    const { events, ...rest } = run;
    truth.push(rest);
    for (const event of events) {
      if (!out.write(`${JSON.stringify(event)}\n`)) await once(out, 'drain');
    }
  }
  out.end();
  await once(out, 'finish');
  return truth;
}
