import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../core/errors.js';
import type { ChatMessage, ModelToolCall, TaskSpec, ToolDefinition } from '../../harness/contracts.js';
import {
  createSimModelFactory,
  readInstructions,
  readMessageSignals,
  readToolResult,
  simProfiles,
  splitSolutionSteps,
} from '../../harness/models/sim/index.js';

/**
 * Each reaction rule of the simulated model on its own: hand-written conversations, no runtime, no shell. Rates are
 * measured over many seeds and compared with the profile's table, with and without the signal.
 */

const root = mkdtempSync(join(tmpdir(), 'sim-rules-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let taskCounter = 0;
function makeTask(solution: string, instruction: string, requiredArtifacts: string[] = []): TaskSpec {
  taskCounter += 1;
  const directory = join(root, `task-${taskCounter}`);
  mkdirSync(join(directory, 'solution'), { recursive: true });
  writeFileSync(join(directory, 'solution', 'solve.sh'), solution);
  return { id: `task-${taskCounter}`, directory, instruction, requiredArtifacts, agentTimeoutSec: 600 };
}

const TOOLS: readonly ToolDefinition[] = [
  { name: 'shell', description: 'Run a bash command in the workspace.', parameters: {} },
  { name: 'read_file', description: 'Read a text file in the workspace.', parameters: {} },
  { name: 'list_directory', description: 'List the entries of a folder.', parameters: {} },
  { name: 'finish', description: 'Declare the task done.', parameters: {} },
];

interface Reply {
  readonly result: string;
  /** A user message after the result, as middleware would add. */
  readonly inject?: string;
}

/** Plays a conversation: the responder answers each call; it stops when the responder returns undefined. */
async function play(
  profile: string,
  task: TaskSpec,
  seed: number,
  respond: (call: ModelToolCall, calls: readonly ModelToolCall[]) => Reply | undefined,
  options: { system?: string; maxTurns?: number } = {},
): Promise<ModelToolCall[]> {
  const model = createSimModelFactory(profile)({ task, seed });
  const messages: ChatMessage[] = [
    { role: 'system', content: options.system ?? 'You are an agent in a Linux terminal. Call finish when done.' },
    { role: 'user', content: task.instruction },
  ];
  const calls: ModelToolCall[] = [];
  for (let turn = 0; turn < (options.maxTurns ?? 80); turn += 1) {
    const response = await model.complete({ messages, tools: TOOLS });
    messages.push({ role: 'assistant', content: response.content, toolCalls: response.toolCalls });
    const call = response.toolCalls[0];
    if (!call) break;
    calls.push(call);
    const reply = respond(call, calls);
    if (!reply) break;
    messages.push({ role: 'tool', toolCallId: call.id, content: reply.result });
    if (reply.inject) messages.push({ role: 'user', content: reply.inject });
  }
  return calls;
}

const ok = (output = ''): Reply => ({ result: `exit code: 0\n${output}` });
const commandOf = (call: ModelToolCall | undefined): string => String(call?.arguments?.command ?? '');
const isExploration = (call: ModelToolCall) =>
  call.name === 'read_file' || call.name === 'list_directory' || /^(?:pwd|ls|head|wc|find|cat)\b/.test(commandOf(call));
const SEEDS = Array.from({ length: 200 }, (_, index) => index);

function rate(values: readonly boolean[]): number {
  return values.length === 0 ? Number.NaN : values.filter(Boolean).length / values.length;
}

const SAMPLE_SOLUTION = [
  '#!/bin/bash',
  'set -euo pipefail',
  '# Look around',
  'ls -la',
  '',
  '# Write the script',
  "cat > run.sh <<'END'",
  'echo one',
  '',
  'echo two',
  'END',
  '',
  'for file in *.txt; do',
  '',
  '  wc -l "$file"',
  'done',
  '',
  'mkdir -p build && cd build',
  'export MODE=fast # the fast mode',
  'source ../env.sh',
  'COUNT=3',
  'greet() {',
  '  echo "hi $1"',
  '}',
  'LANG=C sort x > y',
  '',
].join('\n');

describe('reading the reference solution', () => {
  it('splits at blank lines but never inside a heredoc or a loop, and keeps intents and state lines', () => {
    const steps = splitSolutionSteps(SAMPLE_SOLUTION);
    expect(steps.map((step) => step.intent)).toEqual(['Look around', 'Write the script', undefined, undefined]);
    expect(steps[0]).toMatchObject({ command: 'ls -la', readOnly: true, stateEntries: [] });
    expect(steps[1]!.command).toContain('echo one\n\necho two\nEND');
    expect(steps[1]!.readOnly).toBe(false);
    expect(steps[2]!.command).toContain('done');
    expect(steps[3]!.stateEntries).toEqual([
      'cd build',
      'export MODE=fast',
      'source ../env.sh',
      'COUNT=3',
      'greet() {\n  echo "hi $1"\n}',
    ]);
    expect(steps[3]!.readOnly).toBe(false);
  });

  it('reads tool results, message signals and instructions by fixed wording', () => {
    expect(readToolResult('exit code: 0\nfine')).toMatchObject({ failed: false, exitCode: 0 });
    expect(readToolResult('exit code: 127\nbash: line 1: rg: command not found')).toMatchObject({
      failed: true,
      programsNotFound: ['rg'],
    });
    expect(readToolResult('cat: out/x.txt: No such file or directory').failed).toBe(true);
    expect(readToolResult('Error: could not parse the arguments as JSON.').argumentsUnreadable).toBe(true);
    expect(readMessageSignals('Required file out/report.txt is missing.').missingFiles).toEqual(['out/report.txt']);
    expect(readMessageSignals('cat: notes.txt: No such file or directory').missingFiles).toBeUndefined();
    expect(readMessageSignals('You ran the same command 3 times in a row.').repeatWarning).toBe(true);
    expect(readMessageSignals('`jq` is not installed here.').programsNotInstalled).toEqual(['jq']);
    expect(readMessageSignals('These programs are not installed: rg, fd. Use others.').programsNotInstalled).toEqual([
      'rg',
      'fd',
    ]);
    expect(readMessageSignals('A program is not installed here.').unnamedProgramNotInstalled).toBe(true);
    expect(readMessageSignals('Stop exploring and start implementing.').explorationNudge).toBe(true);
    expect(readInstructions('Before you call finish, check that every required output file exists.')).toEqual([
      'verify-outputs',
    ]);
    expect(readInstructions('Each shell call runs in a fresh process; cd and export do not persist.')).toContain(
      'self-contained-commands',
    );
    expect(readInstructions('Check that a program is installed with command -v before using it.')).toContain(
      'check-dependencies',
    );
  });
});

describe('the model as a ChatModel', () => {
  const task = makeTask(
    '#!/bin/bash\nls\n\nmkdir -p out\n\ncd data\n\nsort input.txt > ../out/sorted.txt\n',
    'Sort `data/input.txt` into `out/sorted.txt`.',
    ['out/sorted.txt'],
  );
  const failingSteps = (call: ModelToolCall): Reply =>
    commandOf(call).startsWith('sort') ? { result: 'exit code: 2\nsort: cannot read: input.txt: No such file' } : ok();

  it('gives the same calls for the same seed and observations, and other calls for other seeds', async () => {
    for (const profile of Object.keys(simProfiles)) {
      const first = await play(profile, task, 7, failingSteps);
      const second = await play(profile, task, 7, failingSteps);
      expect(second).toEqual(first);
    }
    const bySeed = await Promise.all(SEEDS.slice(0, 20).map((seed) => play('lost-state', task, seed, failingSteps)));
    expect(new Set(bySeed.map((calls) => JSON.stringify(calls))).size).toBeGreaterThan(10);
  });

  it('counts tokens from the characters it reads and writes, with a nominal cost', async () => {
    const model = createSimModelFactory('clean')({ task, seed: 1 });
    const messages: ChatMessage[] = [{ role: 'user', content: 'x'.repeat(4000) }];
    const response = await model.complete({ messages, tools: [] });
    expect(response.promptTokens).toBeGreaterThanOrEqual(1000);
    expect(response.promptTokens).toBeLessThan(1100);
    expect(response.completionTokens).toBeGreaterThan(0);
    expect(response.costUsd).toBeGreaterThan(0);
  });

  it('names the profiles it knows, and the solution file it cannot read', () => {
    expect(() => createSimModelFactory('nonsense')).toThrow(UserError);
    expect(() => createSimModelFactory('nonsense')).toThrow(/sim:clean, sim:late-artifacts/);
    const missing: TaskSpec = {
      id: 'no-solution',
      directory: join(root, 'absent'),
      instruction: 'x',
      agentTimeoutSec: 1,
    };
    expect(() => createSimModelFactory('clean')({ task: missing, seed: 1 })).toThrow(
      /absent\/solution\/solve\.sh cannot be read \(ENOENT\): add solution\/solve\.sh to task no-solution/,
    );
  });

  it('sometimes sends arguments that are not JSON, then sends the same call readable', async () => {
    let checked = 0;
    for (const seed of SEEDS) {
      const calls = await play(
        'blind-retry',
        task,
        seed,
        (call, all) => {
          if (all.length > 1 && all[all.length - 2]!.arguments === undefined) return undefined;
          return call.arguments ? failingSteps(call) : { result: 'Error: could not parse the arguments as JSON.' };
        },
        { maxTurns: 30 },
      );
      const at = calls.findIndex((call) => call.arguments === undefined);
      if (at === -1 || at + 1 >= calls.length) continue;
      const broken = calls[at]!;
      const next = calls[at + 1]!;
      if (next.arguments === undefined) continue;
      checked += 1;
      expect(() => JSON.parse(broken.argumentsText ?? '')).toThrow();
      expect(next.name).toBe(broken.name);
      expect(JSON.stringify(next.arguments).replace(/"/g, "'")).toContain(
        (broken.argumentsText ?? '').replace(/"/g, "'").slice(0, -2),
      );
    }
    expect(checked).toBeGreaterThan(5);
  });
});

describe('rule: a failed call → retry verbatim, fix, or move on, by profile', () => {
  const task = makeTask(
    '#!/bin/bash\n# Go to the data\ncd data\n\n# Sort it\nsort input.txt > ../sorted.txt\n',
    'Sort `data/input.txt` into `sorted.txt`.',
    ['sorted.txt'],
  );

  /** The call right after the first failure of the sort step (run without its `cd`), classified. */
  async function reactions(profile: string) {
    const outcomes: ('retry' | 'fix' | 'move-on')[] = [];
    for (const seed of SEEDS) {
      let failed: string | undefined;
      const calls = await play(profile, task, seed, (call) => {
        if (failed !== undefined) return undefined;
        if (commandOf(call).startsWith('sort input.txt')) {
          failed = commandOf(call);
          return { result: 'exit code: 2\nsort: cannot read: input.txt: No such file or directory' };
        }
        return call.name === 'finish' ? undefined : ok(commandOf(call).startsWith('pwd') ? '/workspace\n' : '');
      });
      if (failed === undefined || calls.length < 2) continue;
      const command = commandOf(calls[calls.length - 1]);
      if (command === failed) outcomes.push('retry');
      else if (command.includes('cd data') && command.includes('sort input.txt')) outcomes.push('fix');
      else outcomes.push('move-on');
    }
    return {
      count: outcomes.length,
      retry: rate(outcomes.map((outcome) => outcome === 'retry')),
      fix: rate(outcomes.map((outcome) => outcome === 'fix')),
      moveOn: rate(outcomes.map((outcome) => outcome === 'move-on')),
    };
  }

  it('blind-retry mostly re-runs the same command, clean mostly restores the directory, lost-state moves on', async () => {
    const blind = await reactions('blind-retry');
    const clean = await reactions('clean');
    const lost = await reactions('lost-state');
    expect(blind.count).toBeGreaterThan(15);
    expect(clean.count).toBeGreaterThan(5);
    expect(lost.count).toBeGreaterThan(100);
    // The tables: blind-retry 0.7 / 0.12 / 0.18, clean 0.1 / 0.85 / 0.05, lost-state 0.25 / 0.15 / 0.6.
    expect(blind.retry).toBeGreaterThan(0.5);
    expect(clean.fix).toBeGreaterThan(0.6);
    expect(lost.moveOn).toBeGreaterThan(0.4);
    expect(blind.retry).toBeGreaterThan(clean.retry);
    expect(clean.fix).toBeGreaterThan(blind.fix);
    expect(lost.moveOn).toBeGreaterThan(blind.moveOn);
  });

  it('stops retrying verbatim after its profile’s limit', async () => {
    let longest = 0;
    for (const seed of SEEDS.slice(0, 60)) {
      const calls = await play('blind-retry', task, seed, (call) => {
        if (call.name === 'finish') return undefined;
        return commandOf(call).includes('sort input.txt')
          ? { result: 'exit code: 2\nsort: cannot read: input.txt: No such file or directory' }
          : ok();
      });
      let streak = 1;
      for (let index = 1; index < calls.length; index += 1) {
        const command = commandOf(calls[index]);
        streak = command !== '' && command === commandOf(calls[index - 1]) ? streak + 1 : 1;
        longest = Math.max(longest, streak);
      }
    }
    expect(longest).toBeGreaterThanOrEqual(3);
    expect(longest).toBeLessThanOrEqual(simProfiles['blind-retry']!.maxIdenticalRetries + 1);
  });
});

describe('rule: required files reported missing → create them', () => {
  const task = makeTask(
    '#!/bin/bash\n# Inspect\ncat notes.txt\n\n# Write the report\nmkdir -p out && wc -l notes.txt > out/report.txt\n',
    'Write the line count of `notes.txt` to `out/report.txt`.',
    ['out/report.txt'],
  );

  async function createdAfterFinish(profile: string, message: string | undefined) {
    const created: boolean[] = [];
    for (const seed of SEEDS) {
      let refused = false;
      const calls = await play(profile, task, seed, (call) => {
        if (refused) return undefined;
        if (call.name === 'finish') {
          refused = true;
          return { result: message ?? 'Finish noted.' };
        }
        return ok();
      });
      if (!refused || calls[calls.length - 2]?.name !== 'finish') continue;
      created.push(commandOf(calls[calls.length - 1]).includes('> out/report.txt'));
    }
    return rate(created);
  }

  it('re-runs the step that writes the file with the profile’s probability, and not without the report', async () => {
    const report = 'Cannot finish: required file out/report.txt is missing. Create it first.';
    const late = await createdAfterFinish('late-artifacts', report);
    const clean = await createdAfterFinish('clean', report);
    const unprompted = await createdAfterFinish('late-artifacts', undefined);
    expect(late).toBeGreaterThan(0.6);
    expect(late).toBeLessThan(0.9);
    expect(clean).toBeGreaterThan(late);
    expect(unprompted).toBe(0);
  });

  it('late-artifacts often finishes before writing them; clean rarely does', async () => {
    const premature = async (profile: string) => {
      const flags: boolean[] = [];
      for (const seed of SEEDS) {
        const calls = await play(profile, task, seed, (call) => (call.name === 'finish' ? undefined : ok()));
        flags.push(!calls.some((call) => commandOf(call).includes('> out/report.txt')));
      }
      return rate(flags);
    };
    expect(await premature('late-artifacts')).toBeGreaterThan(0.4);
    expect(await premature('clean')).toBeLessThan(0.1);
  });
});

describe('rule: a warning about repetition → stop repeating', () => {
  const task = makeTask(
    '#!/bin/bash\ncat notes.txt\n\nmkdir -p out && wc -l notes.txt > out/report.txt\n',
    'Write the line count of `notes.txt` to `out/report.txt`.',
    ['out/report.txt'],
  );
  const same = (left?: ModelToolCall, right?: ModelToolCall) =>
    left !== undefined &&
    right !== undefined &&
    left.name === right.name &&
    JSON.stringify(left.arguments) === JSON.stringify(right.arguments);

  it('late-artifacts breaks its loops far more often when warned', async () => {
    const continued = { warned: [] as boolean[], silent: [] as boolean[] };
    for (const seed of SEEDS) {
      for (const warned of [true, false]) {
        let decided: boolean | undefined;
        let warnedAt = -1;
        await play('late-artifacts', task, seed, (call, calls) => {
          if (warnedAt !== -1) {
            decided = same(call, calls[warnedAt]);
            return undefined;
          }
          if (call.name === 'finish') return undefined;
          if (same(call, calls[calls.length - 2])) {
            warnedAt = calls.length - 1;
            return warned
              ? { ...ok(), inject: 'You have made the same call with identical arguments 2 times in a row.' }
              : ok();
          }
          return ok();
        });
        if (decided !== undefined) (warned ? continued.warned : continued.silent).push(decided);
      }
    }
    expect(continued.silent.length).toBeGreaterThan(20);
    expect(rate(continued.silent)).toBeGreaterThan(0.5);
    expect(rate(continued.warned)).toBeLessThan(rate(continued.silent) - 0.3);
    expect(rate(continued.warned)).toBeGreaterThan(0);
  });
});

describe('rule: a program reported not installed → switch to an alternative', () => {
  const task = makeTask(
    '#!/bin/bash\n# Count the records\npython3 -c "import json; print(len(json.load(open(\'data.json\'))))" > count.txt\n',
    'Write the number of records in `data.json` to `count.txt`.',
    ['count.txt'],
  );

  it('blind-retry drops the program far more often after a dependency warning than after the bare error', async () => {
    const switched = { warned: [] as boolean[], bare: [] as boolean[] };
    for (const seed of SEEDS) {
      for (const warned of [true, false]) {
        let answered = false;
        const calls = await play('blind-retry', task, seed, (call) => {
          if (answered) return undefined;
          if (commandOf(call).startsWith('jsonlint')) {
            answered = true;
            return {
              result: 'exit code: 127\nbash: line 1: jsonlint: command not found',
              ...(warned ? { inject: '`jsonlint` is not installed in this environment; use another program.' } : {}),
            };
          }
          return call.name === 'finish' ? undefined : ok();
        });
        if (!answered || !calls[calls.length - 1]?.arguments) continue;
        const next = commandOf(calls[calls.length - 1]);
        (warned ? switched.warned : switched.bare).push(next.includes('python3') && !next.includes('jsonlint'));
      }
    }
    expect(switched.warned.length).toBeGreaterThan(100);
    expect(rate(switched.warned)).toBeGreaterThan(0.6);
    expect(rate(switched.warned)).toBeLessThan(0.95);
    expect(rate(switched.bare)).toBeLessThan(0.3);
  });

  it('checks with command -v first when its instructions ask, with the profile’s probability', async () => {
    const checks = async (system?: string) => {
      const flags: boolean[] = [];
      for (const seed of SEEDS) {
        const calls = await play(
          'blind-retry',
          task,
          seed,
          (call) => {
            if (commandOf(call).startsWith('command -v')) return { result: 'exit code: 1\n' };
            return call.name === 'finish' || commandOf(call).includes('python3') ? undefined : ok();
          },
          system === undefined ? {} : { system },
        );
        const planned = calls.some((call) => /jsonlint/.test(commandOf(call)));
        const checked = calls.some((call) => commandOf(call) === 'command -v jsonlint');
        if (planned || checked) flags.push(checked);
      }
      return rate(flags);
    };
    expect(await checks()).toBe(0);
    const prompted = await checks('Check that a program is installed with command -v before using it.');
    expect(prompted).toBeGreaterThan(0.4);
    expect(prompted).toBeLessThan(0.8);
  });
});

describe('rule: a nudge to stop exploring → start implementing', () => {
  const task = makeTask(
    '#!/bin/bash\nmkdir -p out && wc -l notes.txt > out/report.txt\n',
    'Write the line count of `notes.txt` to `out/report.txt`.',
    ['out/report.txt'],
  );

  it('lost-state stops exploring after a nudge with the profile’s probability', async () => {
    const implemented = { nudged: [] as boolean[], silent: [] as boolean[] };
    for (const seed of SEEDS) {
      for (const nudged of [true, false]) {
        const calls = await play('lost-state', task, seed, (call, all) => {
          if (all.length === 4 || call.name === 'finish') return undefined;
          if (all.length === 3 && nudged) {
            return { ...ok(), inject: 'You have made 3 read-only calls; stop exploring and start implementing.' };
          }
          return ok();
        });
        if (calls.length === 4 && calls.every((call) => call.arguments) && calls.slice(0, 3).every(isExploration)) {
          (nudged ? implemented.nudged : implemented.silent).push(!isExploration(calls[3]!));
        }
      }
    }
    expect(rate(implemented.silent)).toBe(0);
    expect(rate(implemented.nudged)).toBeGreaterThan(0.4);
    expect(rate(implemented.nudged)).toBeLessThan(0.8);
  });
});

describe('rule: advice in the instructions is followed with the profile’s probability', () => {
  const task = makeTask(
    '#!/bin/bash\nmkdir -p out\n\ncd out\nexport NAME=report\n\necho done > "$NAME.txt"\n',
    'Write `out/report.txt`.',
    ['out/report.txt'],
  );

  async function share(profile: string, system: string | undefined, test: (calls: ModelToolCall[]) => boolean) {
    const flags: boolean[] = [];
    for (const seed of SEEDS) {
      const calls = await play(
        profile,
        task,
        seed,
        (call) => (call.name === 'finish' ? undefined : ok(commandOf(call).startsWith('pwd') ? '/workspace\n' : '')),
        system === undefined ? {} : { system },
      );
      flags.push(test(calls));
    }
    return rate(flags);
  }

  it('verify-outputs: checks the required files before finishing', async () => {
    const verifies = (calls: ModelToolCall[]) => calls.some((call) => commandOf(call) === 'ls -l out/report.txt');
    const advice = 'Before calling finish, verify that every required output file exists.';
    const lateBase = await share('late-artifacts', undefined, verifies);
    const lateAdvised = await share('late-artifacts', advice, verifies);
    expect(lateBase).toBeLessThan(0.15);
    expect(lateAdvised).toBeGreaterThan(lateBase + 0.2);
    expect(lateAdvised).toBeLessThan(0.9);
  });

  it('self-contained-commands: repeats cd and export in the command that needs them', async () => {
    const standsAlone = (calls: ModelToolCall[]) =>
      calls.some((call) => /^cd \/workspace\ncd out\nexport NAME=report\necho done/.test(commandOf(call)));
    const advice = 'Each shell call runs in a fresh process: cd and export do not persist between calls.';
    const lostBase = await share('lost-state', undefined, standsAlone);
    const lostAdvised = await share('lost-state', advice, standsAlone);
    const cleanAdvised = await share('clean', advice, standsAlone);
    expect(lostBase).toBeLessThan(0.1);
    expect(lostAdvised).toBeGreaterThan(lostBase + 0.05);
    expect(lostAdvised).toBeLessThan(0.4);
    expect(cleanAdvised).toBeGreaterThan(0.85);
  });
});
