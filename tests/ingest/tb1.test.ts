import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, relative, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TraceEvent } from '../../core/index.js';
import type { SourceUnit } from '../../ingest/adapter.js';
import { tb1Adapter } from '../../ingest/tb1.js';
import { ingestFiles } from '../fuzz/regression.js';
import { collect } from '../support/collect.js';
import { hasSharedTraces, sharedTracesDir, sharedTracesSkipReason } from '../support/shared-traces.js';

const fixtures = join(import.meta.dirname, '../fixtures/tb1');
const terminusRun = join(fixtures, 'terminus-run');
const miniRun = join(fixtures, 'mini-run');
const brokenRun = join(fixtures, 'broken-run');
const leaderboardFile = join(
  fixtures,
  'leaderboard/terminal-bench-core@0.1.1/20250101_demo-agent_demo-model/2025-01-01__00-00-00_results.json',
);

type EventOf<Type extends TraceEvent['type']> = Extract<TraceEvent, { type: Type }>;

function ofType<Type extends TraceEvent['type']>(events: TraceEvent[], type: Type): EventOf<Type>[] {
  return events.filter((event): event is EventOf<Type> => event.type === type);
}

function endOf(events: TraceEvent[], trialName: string): EventOf<'run-end'> {
  const end = ofType(events, 'run-end').find((event) => event.runId.endsWith(`:${trialName}`));
  if (!end) throw new Error(`no run-end for ${trialName}`);
  return end;
}

function outcomeCounts(events: TraceEvent[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const end of ofType(events, 'run-end')) counts[end.data.outcome] = (counts[end.data.outcome] ?? 0) + 1;
  return counts;
}

describe('tb1Adapter detection', () => {
  it('claims run directories and trial folders, and leaves task folders to the walker', () => {
    expect(tb1Adapter.claimsDirectory?.(terminusRun, readdirSync(terminusRun))).toBe(true);
    const trial = join(miniRun, 'fix-git/fix-git.1-of-1.2025-01-03__00-00-00');
    expect(tb1Adapter.claimsDirectory?.(trial, readdirSync(trial))).toBe(true);
    expect(tb1Adapter.claimsDirectory?.(join(miniRun, 'fix-git'), readdirSync(join(miniRun, 'fix-git')))).toBe(false);
  });

  it('claims run-level results files by content, not by name alone', () => {
    const head = readFileSync(leaderboardFile, 'utf8').slice(0, 4096);
    expect(tb1Adapter.claimsFile?.(leaderboardFile, head)).toBe(true);
    expect(tb1Adapter.claimsFile?.('/x/results.json', '{ "total_instances": 91, "resolved_ids": [] }')).toBe(false);
    expect(tb1Adapter.claimsFile?.('/x/events.json', head)).toBe(false);
  });
});

describe('tb1Adapter on a Terminus run directory', async () => {
  const { events, invalid, rejects } = await collect(tb1Adapter, terminusRun, true);
  const runId = 'tb1:2025-01-02__03-04-05:hello-world.1-of-2.2025-01-02__03-04-05';
  const ofRun = events.filter((event) => event.runId === runId);

  it('emits only schema-valid events with unique ids', () => {
    expect(invalid).toEqual([]);
    expect(new Set(events.map((event) => event.id)).size).toBe(events.length);
  });

  it('makes one run per usable trial, named by run_metadata run_id and trial name', () => {
    expect(ofType(events, 'run-start').map((event) => event.runId)).toEqual([
      runId,
      'tb1:2025-01-02__03-04-05:hello-world.2-of-2.2025-01-02__03-04-05',
      'tb1:2025-01-02__03-04-05:csv-report.1-of-1.2025-01-02__03-04-05',
    ]);
  });

  it('rejects the record without trial_name with its file, position and reason, and loads the rest', () => {
    expect(rejects).toHaveLength(1);
    expect(rejects[0]).toMatchObject({
      format: 'tb1',
      file: join(terminusRun, 'results.json'),
      position: 'results[3]',
    });
    expect(rejects[0]?.reason).toMatch(/trial_name/);
    expect(rejects[0]?.raw).toContain('broken-record');
  });

  it('decides outcomes from is_resolved, with failure_mode and failed tests as the reason', () => {
    expect(outcomeCounts(events)).toEqual({ passed: 1, failed: 1, invalid: 1 });
    expect(endOf(events, 'hello-world.1-of-2.2025-01-02__03-04-05').data).toEqual({
      outcome: 'passed',
      reward: 1,
      promptTokens: 1200,
      completionTokens: 300,
      startedAt: '2025-01-02T03:04:05.100000+00:00',
      endedAt: '2025-01-02T03:06:00.000000+00:00',
    });
    expect(endOf(events, 'hello-world.2-of-2.2025-01-02__03-04-05').data).toMatchObject({
      outcome: 'failed',
      reward: 0,
      failureReason: 'agent_timeout; failed tests: test_hello_content',
    });
    expect(endOf(events, 'csv-report.1-of-1.2025-01-02__03-04-05').data).toMatchObject({
      outcome: 'invalid',
      failureReason: 'test_timeout',
    });
  });

  it('fills run-start from run_metadata.json, tb.lock and the trial record', () => {
    const [start] = ofType(ofRun, 'run-start');
    expect(start?.time).toBe('2025-01-02T03:04:05.100000+00:00');
    expect(start?.source).toEqual({ format: 'tb1', file: join(terminusRun, 'results.json'), position: 'results[0]' });
    expect(start?.data).toMatchObject({
      task: 'hello-world',
      dataset: 'terminal-bench-core@0.1.1',
      model: 'openai/gpt-test',
      agent: 'terminus-1',
      attempt: 1,
      trialName: 'hello-world.1-of-2.2025-01-02__03-04-05',
      instruction: 'Create a file called hello.txt containing "Hello, world!".',
      metadata: { tb1RunId: '2025-01-02__03-04-05', terminalBenchVersion: '0.2.17' },
    });
  });

  it('turns each episode into a step and each command into a tool call with its keystrokes', () => {
    const steps = ofType(ofRun, 'step-create');
    expect(steps.map((step) => step.data.step)).toEqual([0, 1]);
    expect(steps[0]?.data.message).toBe(
      'The terminal is empty at /app.\n\nLook at the directory, then write the file.',
    );
    expect(steps[1]?.data.extra).toEqual({ episode: 1, taskComplete: true });
    const calls = ofType(ofRun, 'tool-call');
    expect(calls.map((call) => [call.data.step, call.data.command])).toEqual([
      [0, 'ls -la'],
      [0, "echo 'Hello, world!' > hello.txt"],
      [1, 'cat hello.txt'],
    ]);
    expect(calls[1]?.data.arguments).toEqual({
      keystrokes: "echo 'Hello, world!' > hello.txt\n",
      isBlocking: true,
      timeoutSec: 1,
    });
    expect(calls[1]?.source?.position).toBe('episode-0/response.json commands[1]');
  });

  it("takes a step's output from the next episode's prompt, or the post-agent pane after the last one", () => {
    const results = ofType(ofRun, 'tool-result');
    expect(results.map((result) => [result.data.callId, result.source?.position])).toEqual([
      ['0.1', 'episode-1/prompt.txt'],
      ['1.0', 'panes/post-agent.txt'],
    ]);
    expect(results[0]?.data.error).toBe('timed out after 1.0 seconds');
    expect(results[1]?.data.output).toBe(
      'root@4f1c:/app# cat hello.txt; tmux wait -S done\nHello, world!\nroot@4f1c:/app#',
    );
  });

  it('turns parser_results into a run-verify event', () => {
    expect(ofType(events, 'run-verify').map((verify) => verify.data)).toEqual([
      {
        reward: 1,
        tests: [
          { name: 'test_hello_file_exists', status: 'passed' },
          { name: 'test_hello_content', status: 'passed' },
        ],
      },
      {
        reward: 0,
        tests: [
          { name: 'test_hello_file_exists', status: 'passed' },
          { name: 'test_hello_content', status: 'failed' },
        ],
      },
    ]);
  });

  it('gives trials without a folder a run without steps', () => {
    const stepless = events.filter((event) => event.runId.includes('hello-world.2-of-2'));
    expect(stepless.map((event) => event.type)).toEqual(['run-start', 'run-verify', 'run-end']);
  });

  it('gives a trial folder read on its own the same run id and steps as its run directory does', async () => {
    const alone = await collect(
      tb1Adapter,
      join(terminusRun, 'hello-world/hello-world.1-of-2.2025-01-02__03-04-05'),
      true,
    );
    expect(alone.rejects).toEqual([]);
    expect(new Set(alone.events.map((event) => event.runId))).toEqual(new Set([runId]));
    expect(alone.events.map((event) => event.id)).toEqual(ofRun.map((event) => event.id));
  });

  it('yields the same events on a second read, so a re-import adds nothing', async () => {
    const again = await collect(tb1Adapter, terminusRun, true);
    expect(again.events).toEqual(events);
  });
});

describe('tb1Adapter on an installed agent with commands.txt only', async () => {
  const { events, invalid, rejects } = await collect(tb1Adapter, miniRun, true);

  it('makes each command before the test phase a step with a tool call', () => {
    expect(invalid).toEqual([]);
    expect(rejects).toEqual([]);
    expect(ofType(events, 'step-create').map((step) => step.data.step)).toEqual([1, 2, 3]);
    expect(ofType(events, 'tool-call').map((call) => call.data.command)).toEqual([
      'asciinema rec --stdin /logs/agent.cast',
      'clear',
      "mini -m anthropic/claude-test -t 'Recover the lost commit and merge it into master.' -y --exit-immediately",
    ]);
  });

  it('keeps the session log, without ANSI codes, as the output of the last command', () => {
    const [result] = ofType(events, 'tool-result');
    expect(result?.data.callId).toBe('3.0');
    expect(result?.source?.position).toBe('sessions/agent.log');
    expect(result?.data.output).not.toContain('\u001b');
    expect(result?.data.output).not.toContain('\r');
    expect(result?.data.output).toBe(
      'root@7a2b:/app# mini -m anthropic/claude-test -y\nmini-swe-agent (step 1, $0.01):\n```bash\ngit reflog\n```\n100% done\nroot@7a2b:/app#',
    );
  });

  it('reports an agent timeout with the failed tests', () => {
    expect(endOf(events, 'fix-git.1-of-1.2025-01-03__00-00-00').data.failureReason).toBe(
      'agent_timeout; failed tests: test_commit_recovered, test_branch_merged',
    );
  });
});

describe('tb1Adapter on a leaderboard results file without run folder', async () => {
  const { events, invalid, rejects } = await collect(tb1Adapter, leaderboardFile, false);

  it('makes runs without steps that still count in outcomes', () => {
    expect(invalid).toEqual([]);
    expect(rejects).toEqual([]);
    expect(events.map((event) => event.type)).toEqual([
      'run-start',
      'run-verify',
      'run-end',
      'run-start',
      'run-verify',
      'run-end',
      'run-start',
      'run-end',
    ]);
    expect(outcomeCounts(events)).toEqual({ passed: 1, failed: 1, invalid: 1 });
    expect(endOf(events, 'csv-report.1-of-1.2025-01-01__00-00-00').data.failureReason).toBe('parse_error');
  });

  it('names agent, model, dataset and run id from the folder and file names', () => {
    const [start] = ofType(events, 'run-start');
    expect(start?.runId).toBe('tb1:2025-01-01__00-00-00:hello-world.1-of-1.2025-01-01__00-00-00');
    expect(start?.data).toMatchObject({
      agent: 'demo-agent',
      model: 'demo-model',
      dataset: 'terminal-bench-core@0.1.1',
    });
  });

  it('keeps the failure_mode of a passed trial in metadata, not as a failure reason', () => {
    const [start] = ofType(events, 'run-start');
    expect(start?.data.metadata).toMatchObject({ failureMode: 'agent_timeout' });
    expect(endOf(events, 'hello-world.1-of-1.2025-01-01__00-00-00').data.failureReason).toBeUndefined();
  });
});

describe('tb1Adapter on broken input', async () => {
  const { events, invalid, rejects } = await collect(tb1Adapter, brokenRun, true);

  it('rejects the truncated results.json and the invalid episode, and still loads the trial from its folder', () => {
    expect(invalid).toEqual([]);
    expect(rejects.map((reject) => [basename(reject.file ?? ''), reject.position])).toEqual([
      ['results.json', 'whole file'],
      ['response.json', 'episode-0/response.json'],
      // The terminal episode-0's commands produced has no call to belong to once episode-0 is rejected.
      ['prompt.txt', 'episode-1/prompt.txt'],
    ]);
    expect(rejects[0]?.reason).toMatch(/^truncated JSON/);
    expect(rejects[0]?.raw).toContain('"hello-wor');
    expect(rejects[1]?.reason).toMatch(/JSON/);
    expect(ofType(events, 'run-end').map((end) => [end.runId, end.data.outcome])).toEqual([
      ['tb1:2025-01-04__00-00-00:hello-world.1-of-1.2025-01-04__00-00-00', 'failed'],
    ]);
    expect(ofType(events, 'tool-call').map((call) => [call.data.step, call.data.command])).toEqual([
      [1, 'echo hi > hello.txt'],
    ]);
  });

  it('never throws, even on a path that does not exist', async () => {
    const missing = await collect(tb1Adapter, join(fixtures, 'no-such-run'), true);
    expect(missing.events).toEqual([]);
  });
});

/** Plans units the way the ingest walker does: a claimed directory is read whole, other folders are descended. */
function planUnits(path: string): SourceUnit[] {
  if (!statSync(path).isDirectory()) {
    const head = readFileSync(path, 'utf8').slice(0, 4096);
    return tb1Adapter.claimsFile?.(path, head) ? [{ path, isDirectory: false }] : [];
  }
  const names = readdirSync(path).sort();
  if (tb1Adapter.claimsDirectory?.(path, names)) return [{ path, isDirectory: true }];
  return names.filter((name) => !name.startsWith('.')).flatMap((name) => planUnits(join(path, name)));
}

const realTracesTitle = hasSharedTraces
  ? 'tb1Adapter on real traces'
  : `tb1Adapter on real traces: skipped, ${sharedTracesSkipReason}`;

describe.skipIf(!hasSharedTraces)(realTracesTitle, () => {
  it('parses the Terminus-1 runs with no invalid events and no rejects', async () => {
    const units = planUnits(join(sharedTracesDir, 'tb1-terminus1'));
    expect(units).toHaveLength(8);
    const events: TraceEvent[] = [];
    for (const unit of units) {
      const parsed = await collect(tb1Adapter, unit.path, unit.isDirectory);
      expect(parsed.invalid).toEqual([]);
      expect(parsed.rejects).toEqual([]);
      events.push(...parsed.events);
    }
    expect(outcomeCounts(events)).toEqual({ passed: 4, failed: 4 });
    const coder = events.filter((event) => event.runId.startsWith('tb1:2025-08-25__16-48-34:'));
    expect(ofType(coder, 'step-create')).toHaveLength(50);
    expect(ofType(coder, 'tool-call')[0]?.data.command).toBe('ls -la');
    expect(
      endOf(coder, '051552bf-21cb-4d6e-985a-435764d87689_terminal_bench_fifo_medium.1-of-1.2025-08-25__16-48-34').data
        .failureReason,
    ).toMatch(/^agent_timeout; failed tests: test_runtime_volume_rotations_timeline, /);
    expect(new Set(ofType(events, 'run-start').map((start) => start.data.agent))).toEqual(
      new Set(['oracle', 'terminus-1']),
    );
  });

  it('gives exactly the outcome counts of outcomes_index.csv for every leaderboard submission', async () => {
    const leaderboard = join(sharedTracesDir, 'tb1-leaderboard');
    const expected: Record<string, Record<string, number>> = {};
    const [, ...rows] = readFileSync(join(leaderboard, 'outcomes_index.csv'), 'utf8').trim().split('\n');
    for (const row of rows) {
      const [submission = '', , , , isResolved] = row.split(',');
      const outcome = isResolved === 'True' ? 'passed' : isResolved === 'False' ? 'failed' : 'invalid';
      expected[submission] ??= {};
      expected[submission][outcome] = (expected[submission][outcome] ?? 0) + 1;
    }
    const actual: Record<string, Record<string, number>> = {};
    const results = join(leaderboard, 'results');
    for (const unit of planUnits(results)) {
      const parsed = await collect(tb1Adapter, unit.path, unit.isDirectory);
      expect(parsed.invalid).toEqual([]);
      expect(parsed.rejects).toEqual([]);
      const submission = relative(results, unit.path).split(sep)[1] ?? '';
      actual[submission] ??= {};
      for (const [outcome, count] of Object.entries(outcomeCounts(parsed.events))) {
        actual[submission][outcome] = (actual[submission][outcome] ?? 0) + count;
      }
    }
    expect(Object.keys(expected)).toHaveLength(13);
    expect(actual).toEqual(expected);
  });
});

describe('TB1: bugs found by fuzzing (tests/fuzz)', () => {
  /** A run of one resolved trial whose agent logs are `episodes` (path under agent-logs/ → text). */
  function oneTrialRun(episodes: Record<string, string>) {
    const trial = 'hello/hello.1-of-1.2025-01-01__00-00-00';
    const record = { trial_name: 'hello.1-of-1.2025-01-01__00-00-00', task_id: 'hello', is_resolved: true };
    const files: Record<string, string> = {
      'run/run_metadata.json': JSON.stringify({ run_id: 'r1' }),
      'run/results.json': JSON.stringify({ results: [record] }),
      [`run/${trial}/results.json`]: JSON.stringify(record),
    };
    for (const [path, text] of Object.entries(episodes)) files[`run/${trial}/agent-logs/${path}`] = text;
    return ingestFiles(files);
  }

  it('rejects the terminal after a rejected episode instead of dropping it without a word', async () => {
    const { rejects, events } = await oneTrialRun({
      'episode-0/response.json': '{"commands": [{"keystrokes": "ls\\n"}]',
      'episode-1/prompt.txt': 'a.txt',
      'episode-1/response.json': '{"commands": [], "is_task_complete": true}',
    });
    expect(rejects.map((reject) => [reject.file.split('/').slice(-2).join('/'), reject.position])).toEqual([
      ['episode-0/response.json', 'episode-0/response.json'],
      ['episode-1/prompt.txt', 'episode-1/prompt.txt'],
    ]);
    expect(rejects[1]?.reason).toBe(
      'not loaded: the terminal after episode-0, whose response.json was rejected, has no tool call to belong to',
    );
    expect(events.map((event) => event.type)).toEqual(['run-start', 'step-create', 'run-end']);
  });

  it('rejects the terminal after an episode whose response.json is missing', async () => {
    const { rejects, events } = await oneTrialRun({
      'episode-0/prompt.txt': 'the task',
      'episode-1/prompt.txt': 'a.txt',
      'episode-1/response.json': '{"commands": [], "is_task_complete": true}',
    });
    expect(rejects.map((reject) => [reject.file.split('/').slice(-2).join('/'), reject.reason])).toEqual([
      [
        'episode-1/prompt.txt',
        'not loaded: the terminal after episode-0, whose response.json is missing, has no tool call to belong to',
      ],
    ]);
    expect(events.map((event) => event.type)).toEqual(['run-start', 'step-create', 'run-end']);
  });

  it('rejects parser_results that are no object of test → status, and still loads the run and its outcome', async () => {
    const record = {
      trial_name: 'hello.1-of-1.2025-01-01__00-00-00',
      task_id: 'hello',
      is_resolved: false,
      parser_results: [[{ test_hello: 'failed' }]],
    };
    const { rejects, events, runs } = await ingestFiles({
      'run/results.json': JSON.stringify({ results: [record] }),
    });
    expect(rejects.map((reject) => [reject.position, reject.reason.split(':')[0]])).toEqual([
      [
        'results[0].parser_results',
        'parser_results is not an object of test name → status, so the per-test results are left out (the run still loads)',
      ],
    ]);
    expect(events.map((event) => event.type)).toEqual(['run-start', 'run-end']);
    expect(runs.map((run) => [run.outcome, run.reward])).toEqual([['failed', 0]]);
  });
});
