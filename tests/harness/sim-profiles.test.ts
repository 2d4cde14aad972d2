import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatMessage, TaskSpec, ToolDefinition } from '../../harness/contracts.js';
import { createSimModelFactory } from '../../harness/models/sim/index.js';

/**
 * Many seeded episodes of each profile, played by a small loop in this file: shell calls run for real with bash in a
 * temporary workspace (each call in a fresh process, or in one persistent shell), file tools read and list for real,
 * and two generic helpers stand in for middleware (a finish refused while required files are missing; a persistent
 * shell). The rates measured from the transcripts must show each profile's own mechanisms.
 */

interface SuiteTask {
  readonly id: string;
  readonly instruction: string;
  readonly requiredArtifacts: readonly string[];
  readonly files: Readonly<Record<string, string>>;
  readonly solution: string;
}

const TASKS: readonly SuiteTask[] = [
  {
    id: 'line-report',
    instruction: 'Count the lines of `data/input.txt` and write `total N` to `out/report.txt`.',
    requiredArtifacts: ['out/report.txt'],
    files: { 'data/input.txt': 'a\nb\nc\n' },
    solution: `#!/bin/bash
set -euo pipefail
# Look at the input
ls -la data

# Prepare the output folder
mkdir -p out

# Work inside the data folder
cd data
export LABEL=total

# Write the report
echo "$LABEL $(wc -l < input.txt)" > ../out/report.txt
`,
  },
  {
    id: 'json-count',
    instruction: 'Write the number of records in `records.json` to `out/count.txt`.',
    requiredArtifacts: ['out/count.txt'],
    files: { 'records.json': '[{"id":1},{"id":2},{"id":3},{"id":4}]\n' },
    solution: `#!/bin/bash
# Inspect the records
cat records.json

# Count them
mkdir -p out
python3 -c 'import json; print(len(json.load(open("records.json"))))' > out/count.txt
`,
  },
  {
    id: 'csv-column',
    instruction: 'Using the column named in `config.env`, write the sorted values of `sales.csv` to `out/column.txt`.',
    requiredArtifacts: ['out/column.txt'],
    files: { 'sales.csv': 'name,amount\nb,30\na,10\nc,20\n', 'config.env': 'export COLUMN=2\n' },
    solution: `#!/bin/bash
head -n 3 sales.csv

# Load the settings
source config.env

# Extract and sort the column
mkdir -p out
cut -d, -f"$COLUMN" sales.csv | tail -n +2 | sort -n > out/column.txt
`,
  },
  {
    id: 'slug-helper',
    instruction: 'Write the slug of "Hello Big World" (lower case, spaces as dashes) to `out/slug.txt`.',
    requiredArtifacts: ['out/slug.txt'],
    files: {},
    solution: `#!/bin/bash
# A helper for slugs
slug() {
  echo "$1" | tr 'A-Z ' 'a-z-'
}

mkdir -p out && slug "Hello Big World" > out/slug.txt
`,
  },
];

const TOOLS: readonly ToolDefinition[] = [
  { name: 'shell', description: 'Run a bash command in the workspace. Each call starts a new shell.', parameters: {} },
  { name: 'read_file', description: 'Read a text file in the workspace.', parameters: {} },
  { name: 'list_directory', description: 'List the entries of a folder in the workspace.', parameters: {} },
  { name: 'finish', description: 'Declare the task done, with a short summary.', parameters: {} },
];
const SYSTEM = 'You are an autonomous agent solving a task in a Linux terminal. Call finish when the task is done.';
const MAX_TURNS = 50;

/**
 * One bash process per episode. Persistent mode sources each command in it, so state carries over; fresh mode runs
 * each command in a subshell of it that starts in the workspace, so nothing carries over (the parent never changes).
 */
class Bash {
  private readonly process: ChildProcessWithoutNullStreams;
  private buffer = '';
  private waiting: ((text: string) => void) | undefined;
  private counter = 0;

  constructor(
    private readonly workspace: string,
    private readonly persistent: boolean,
  ) {
    this.process = spawn('bash', ['--noprofile', '--norc'], { cwd: workspace, env: { PATH: process.env.PATH ?? '' } });
    const take = (chunk: Buffer) => {
      this.buffer += chunk.toString('utf8');
      this.waiting?.(this.buffer);
    };
    this.process.stdout.on('data', take);
    this.process.stderr.on('data', take);
  }

  run(command: string): Promise<{ output: string; exitCode: number }> {
    this.counter += 1;
    const file = join(this.workspace, '..', `command-${this.counter}.sh`);
    writeFileSync(file, `${command}\n`);
    const marker = `__done_${this.counter}__`;
    const line = this.persistent
      ? `source ${file} 2>&1 < /dev/null; echo "${marker}$?"\n`
      : `(cd ${this.workspace} && source ${file}) 2>&1 < /dev/null; echo "${marker}$?"\n`;
    this.buffer = '';
    return new Promise((resolve) => {
      this.waiting = (text) => {
        const at = text.indexOf(marker);
        const end = text.indexOf('\n', at);
        if (at === -1 || end === -1) return;
        this.waiting = undefined;
        resolve({ output: text.slice(0, at), exitCode: Number(text.slice(at + marker.length, end)) });
      };
      this.process.stdin.write(line);
    });
  }

  close(): void {
    this.process.kill();
  }
}

interface Episode {
  readonly passed: boolean;
  readonly finished: boolean;
  readonly prematureFinish: boolean;
  readonly toolLoop: boolean;
  readonly repeatedFailedCommand: boolean;
  readonly missingDependency: boolean;
  readonly lostState: boolean;
  readonly readOnlyCalls: number;
  readonly calls: number;
  readonly malformedCalls: number;
}

interface EpisodeOptions {
  readonly persistentShell?: boolean;
  /** Refuse a finish while required files are missing, naming them (as an artifact check would). */
  readonly refuseFinishWhenMissing?: boolean;
}

let root: string;
const expected = new Map<string, Map<string, string>>();

function prepare(task: SuiteTask, parent: string): { workspace: string; spec: TaskSpec } {
  const directory = join(parent, 'task');
  mkdirSync(join(directory, 'solution'), { recursive: true });
  writeFileSync(join(directory, 'solution', 'solve.sh'), task.solution);
  const workspace = join(parent, 'workspace');
  mkdirSync(workspace, { recursive: true });
  for (const [path, content] of Object.entries(task.files)) {
    mkdirSync(dirname(join(workspace, path)), { recursive: true });
    writeFileSync(join(workspace, path), content);
  }
  const spec: TaskSpec = {
    id: task.id,
    directory,
    instruction: task.instruction,
    requiredArtifacts: task.requiredArtifacts,
    agentTimeoutSec: 600,
  };
  return { workspace, spec };
}

function readArtifact(workspace: string, path: string): string | undefined {
  try {
    return readFileSync(join(workspace, path), 'utf8');
  } catch {
    return undefined;
  }
}

const READ_ONLY_SHELL = /^(?:pwd|ls|cat|head|wc|find|tail|grep|stat|file)\b/;

async function playEpisode(profile: string, task: SuiteTask, seed: number, options: EpisodeOptions = {}) {
  const parent = mkdtempSync(join(root, `${task.id}-`));
  const { workspace, spec } = prepare(task, parent);
  const bash = new Bash(workspace, options.persistentShell ?? false);
  const model = createSimModelFactory(profile)({ task: spec, seed });
  const messages: ChatMessage[] = [
    { role: 'system', content: SYSTEM },
    { role: 'user', content: task.instruction },
  ];
  const calls: string[] = [];
  const failures = new Map<string, number>();
  let finished = false;
  let prematureFinish = false;
  let missingDependency = false;
  let lostState = false;
  let readOnlyCalls = 0;
  let malformedCalls = 0;
  let stateSet = false;
  try {
    for (let turn = 0; turn < MAX_TURNS && !finished; turn += 1) {
      const response = await model.complete({ messages, tools: TOOLS });
      messages.push({ role: 'assistant', content: response.content, toolCalls: response.toolCalls });
      const call = response.toolCalls[0];
      if (!call) break;
      if (!call.arguments) {
        malformedCalls += 1;
        messages.push({ role: 'tool', toolCallId: call.id, content: 'Error: could not parse the arguments as JSON.' });
        continue;
      }
      const args = call.arguments;
      calls.push(`${call.name} ${JSON.stringify(args)}`);
      let content: string;
      if (call.name === 'finish') {
        const missing = task.requiredArtifacts.filter((path) => readArtifact(workspace, path) === undefined);
        if (missing.length > 0 && calls.filter((entry) => entry.startsWith('finish')).length === 1) {
          prematureFinish = true;
        }
        if (missing.length > 0 && options.refuseFinishWhenMissing) {
          content = `Cannot finish yet: required files are missing: ${missing.join(', ')}. Create them first.`;
        } else {
          finished = true;
          content = 'Finished.';
        }
      } else if (call.name === 'shell') {
        const command = String(args.command);
        if (READ_ONLY_SHELL.test(command) && !command.includes('>')) readOnlyCalls += 1;
        const result = await bash.run(command);
        content = `exit code: ${result.exitCode}\n${result.output}`;
        if (/command not found/.test(result.output)) missingDependency = true;
        if (result.exitCode !== 0) {
          failures.set(command, (failures.get(command) ?? 0) + 1);
          if (stateSet && !/(?:^|\n)\s*(?:cd|source|export)\s|\(\)\s*\{/.test(command)) lostState = true;
        } else if (/(?:^|\n)\s*(?:cd|source|export)\s|\(\)\s*\{/.test(command)) {
          stateSet = true;
        }
      } else if (call.name === 'read_file') {
        readOnlyCalls += 1;
        content = readArtifact(workspace, String(args.path)) ?? `Error: ${args.path}: No such file or directory`;
      } else {
        readOnlyCalls += 1;
        const listing = await bash.run(`ls -1A ${JSON.stringify(String(args.path))}`);
        content = listing.output;
      }
      messages.push({ role: 'tool', toolCallId: call.id, content });
    }
  } finally {
    bash.close();
  }
  const wanted = expected.get(task.id)!;
  const passed = [...wanted].every(([path, content]) => readArtifact(workspace, path) === content);
  let toolLoop = false;
  for (let index = 2; index < calls.length; index += 1) {
    if (calls[index] === calls[index - 1] && calls[index] === calls[index - 2] && !calls[index]!.startsWith('finish'))
      toolLoop = true;
  }
  rmSync(parent, { recursive: true, force: true });
  return {
    passed,
    finished,
    prematureFinish,
    toolLoop,
    repeatedFailedCommand: [...failures.values()].some((count) => count >= 3),
    missingDependency,
    lostState,
    readOnlyCalls,
    calls: calls.length + malformedCalls,
    malformedCalls,
  } satisfies Episode;
}

interface Rates {
  passed: number;
  unfinished: number;
  prematureFinish: number;
  toolLoop: number;
  repeatedFailedCommand: number;
  missingDependency: number;
  lostState: number;
  readOnlyShare: number;
  malformed: number;
}

async function measure(profile: string, episodes: number, options: EpisodeOptions = {}): Promise<Rates> {
  const results: Episode[] = [];
  for (let seed = 0; seed < episodes; seed += 1) {
    results.push(await playEpisode(profile, TASKS[seed % TASKS.length]!, seed, options));
  }
  const share = (pick: (episode: Episode) => boolean) => results.filter(pick).length / results.length;
  return {
    passed: share((episode) => episode.passed),
    unfinished: share((episode) => !episode.finished),
    prematureFinish: share((episode) => episode.prematureFinish),
    toolLoop: share((episode) => episode.toolLoop),
    repeatedFailedCommand: share((episode) => episode.repeatedFailedCommand),
    missingDependency: share((episode) => episode.missingDependency),
    lostState: share((episode) => episode.lostState),
    readOnlyShare:
      results.reduce((sum, episode) => sum + episode.readOnlyCalls, 0) /
      results.reduce((sum, episode) => sum + episode.calls, 0),
    malformed: share((episode) => episode.malformedCalls > 0),
  };
}

const EPISODES = 16;
const rates = new Map<string, Rates>();

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sim-profiles-'));
  for (const task of TASKS) {
    const parent = mkdtempSync(join(root, `oracle-${task.id}-`));
    const { workspace } = prepare(task, parent);
    const bash = new Bash(workspace, false);
    const result = await bash.run(`bash ${join(parent, 'task', 'solution', 'solve.sh')}`);
    bash.close();
    if (result.exitCode !== 0) throw new Error(`The reference solution of ${task.id} fails: ${result.output}`);
    expected.set(
      task.id,
      new Map(task.requiredArtifacts.map((path) => [path, readArtifact(workspace, path) ?? ''] as const)),
    );
  }
  // Profiles run side by side (each episode has its own bash), so both cores are used.
  const profiles = ['clean', 'late-artifacts', 'blind-retry', 'lost-state'];
  const measured = await Promise.all(profiles.map((profile) => measure(profile, EPISODES)));
  for (const [index, profile] of profiles.entries()) rates.set(profile, measured[index]!);
  if (process.env.SIM_PRINT_RATES) console.table(Object.fromEntries(rates));
});

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('simulated model profiles over seeded episodes', () => {
  it('the clean control passes most episodes, and more than any failure profile', () => {
    const clean = rates.get('clean')!;
    expect(clean.passed).toBeGreaterThanOrEqual(0.8);
    for (const profile of ['late-artifacts', 'blind-retry', 'lost-state']) {
      expect(rates.get(profile)!.passed).toBeLessThan(clean.passed);
    }
  });

  it('late-artifacts finishes before writing the required files most often, and loops on tools most often', () => {
    const late = rates.get('late-artifacts')!;
    for (const profile of ['clean', 'blind-retry', 'lost-state']) {
      expect(late.prematureFinish).toBeGreaterThan(rates.get(profile)!.prematureFinish);
      expect(late.toolLoop).toBeGreaterThan(rates.get(profile)!.toolLoop);
    }
    expect(late.prematureFinish).toBeGreaterThanOrEqual(0.3);
  });

  it('blind-retry hits missing programs and repeats failed commands most often', () => {
    const blind = rates.get('blind-retry')!;
    for (const profile of ['clean', 'late-artifacts', 'lost-state']) {
      expect(blind.missingDependency).toBeGreaterThan(rates.get(profile)!.missingDependency);
      expect(blind.repeatedFailedCommand).toBeGreaterThan(rates.get(profile)!.repeatedFailedCommand);
    }
    expect(blind.missingDependency).toBeGreaterThanOrEqual(0.5);
  });

  it('lost-state loses shell state, explores and runs out of turns most often', () => {
    const lost = rates.get('lost-state')!;
    for (const profile of ['clean', 'late-artifacts', 'blind-retry']) {
      expect(lost.lostState).toBeGreaterThan(rates.get(profile)!.lostState);
      expect(lost.readOnlyShare).toBeGreaterThan(rates.get(profile)!.readOnlyShare);
      expect(lost.unfinished).toBeGreaterThanOrEqual(rates.get(profile)!.unfinished);
    }
    expect(lost.unfinished).toBeGreaterThan(0);
  });

  it('some calls carry arguments that are not JSON, and the episode goes on', () => {
    const malformed = ['late-artifacts', 'blind-retry', 'lost-state'].map((profile) => rates.get(profile)!.malformed);
    expect(Math.max(...malformed)).toBeGreaterThan(0);
  });
});

describe('generic help changes the profile it targets', () => {
  it('refusing to finish while required files are missing raises late-artifacts', async () => {
    const helped = await measure('late-artifacts', EPISODES, { refuseFinishWhenMissing: true });
    const base = rates.get('late-artifacts')!;
    expect(helped.passed).toBeGreaterThan(base.passed + 0.15);
    expect(helped.prematureFinish).toBe(base.prematureFinish);
  });

  it('a persistent shell raises lost-state, and budget exhaustion remains', async () => {
    const helped = await measure('lost-state', EPISODES, { persistentShell: true });
    const base = rates.get('lost-state')!;
    expect(helped.passed).toBeGreaterThan(base.passed + 0.15);
    expect(helped.unfinished).toBeGreaterThan(0);
  });
});
