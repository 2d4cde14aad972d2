import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError, UserError } from '../../core/index.js';
import {
  DEFAULT_SUITE_ROOT,
  findBubblewrap,
  loadSuite,
  loadTask,
  openSandbox,
  readVerdict,
  type Sandbox,
  type Suite,
  selectTasks,
  splitSolutionSteps,
  type Task,
} from '../../tasks/index.js';
import { parseToml } from '../../tasks/toml.js';

const suite: Suite = loadSuite();
const limits = { timeoutMs: 60_000, maxOutputBytes: 256 * 1024 };
const shellStateTasks = suite.tasks.filter((task) => task.tags.includes('shell-state'));

function steps(task: Task): string[] {
  return splitSolutionSteps(readFileSync(task.solutionPath, 'utf8'));
}

/** Runs `work` over the items, two at a time (the machine has two cores). */
async function inPairs<T, R>(items: readonly T[], work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  };
  await Promise.all([worker(), worker()]);
  return results;
}

describe('the bundled suite', () => {
  it('has at least 40 tasks split about 24 / 12 / 8, with categories spread across splits', () => {
    expect(suite.tasks.length).toBeGreaterThanOrEqual(40);
    expect(suite.splits['held-in'].length).toBeGreaterThanOrEqual(20);
    expect(suite.splits['held-out'].length).toBeGreaterThanOrEqual(10);
    expect(suite.splits.sealed.length).toBeGreaterThanOrEqual(6);
    const categories = new Set(suite.tasks.map((task) => task.category));
    expect(categories.size).toBeGreaterThanOrEqual(8);
    for (const category of categories) {
      const splits = new Set(suite.tasks.filter((task) => task.category === category).map((task) => task.split));
      expect(splits.size, `category ${category} is in one split only`).toBeGreaterThanOrEqual(2);
    }
  });

  it('gives every solution at least two steps, and at least ten tasks that need shell state', () => {
    for (const task of suite.tasks) {
      expect(steps(task).length, `${task.id}/solution/solve.sh`).toBeGreaterThanOrEqual(2);
      expect(readFileSync(task.solutionPath, 'utf8').startsWith('#!/bin/bash\n'), task.id).toBe(true);
    }
    expect(shellStateTasks.length).toBeGreaterThanOrEqual(10);
    for (const split of ['held-in', 'held-out', 'sealed']) {
      expect(
        shellStateTasks.some((task) => task.split === split),
        split,
      ).toBe(true);
    }
  });

  it('declares required artifacts that the verifier checks by name', () => {
    const withArtifacts = suite.tasks.filter((task) => task.requiredArtifacts.length > 0);
    expect(withArtifacts.length).toBeGreaterThanOrEqual(30);
    for (const task of withArtifacts) {
      const test = readFileSync(join(task.testsFolder, 'test.sh'), 'utf8');
      for (const artifact of task.requiredArtifacts) expect(test, task.id).toContain(`require ${artifact}`);
    }
  });

  it('splits solutions at blank lines, dropping the #! line and comment-only blocks', () => {
    expect(
      splitSolutionSteps('#!/bin/bash\n# look first\nls\n\ncd sub\n\n# only a note\n\ncat <<EOF\na\nEOF\n'),
    ).toEqual(['# look first\nls', 'cd sub', 'cat <<EOF\na\nEOF']);
  });

  it('selects splits, ids and all, and rejects unknown names with a hint', () => {
    expect(selectTasks(suite, ['all'])).toHaveLength(suite.tasks.length);
    expect(selectTasks(suite, ['held-out']).every((task) => task.split === 'held-out')).toBe(true);
    expect(selectTasks(suite, ['count-words', 'sealed']).length).toBe(suite.splits.sealed.length + 1);
    expect(() => selectTasks(suite, ['count-word'])).toThrow(
      /Unknown task or split "count-word" \(did you mean count-words\?\)/,
    );
    expect(() => selectTasks(suite, [])).toThrow(UserError);
  });
});

describe('loading errors name the file and the field', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'selfharness-suite-copy-'));
    cpSync(join(DEFAULT_SUITE_ROOT, 'suite', 'count-words'), join(root, 'suite', 'count-words'), { recursive: true });
    cpSync(join(DEFAULT_SUITE_ROOT, 'suite', 'greet-script-args'), join(root, 'suite', 'greet-script-args'), {
      recursive: true,
    });
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const writeSplits = (value: unknown) => writeFileSync(join(root, 'splits.json'), JSON.stringify(value));

  it('reports a task in no split, an unknown split entry, and a wrong field in splits.json', () => {
    writeSplits({ 'held-in': ['count-words'], 'held-out': [], sealed: [] });
    expect(() => loadSuite(root)).toThrow(/splits\.json: tasks in no split: greet-script-args/);
    writeSplits({ 'held-in': ['count-words', 'greet-script-args'], 'held-out': ['missing-task'], sealed: [] });
    expect(() => loadSuite(root)).toThrow(/splits\.json: held-out\.0: no task folder suite\/missing-task/);
    writeSplits({ 'held-in': ['count-words', 'greet-script-args'], 'held-out': [], sealed: 'x' });
    expect(() => loadSuite(root)).toThrow(/splits\.json: sealed: /);
    writeSplits({ 'held-in': ['count-words', 'greet-script-args'], 'held-out': ['count-words'], sealed: [] });
    expect(() => loadSuite(root)).toThrow(/held-out\.0: task count-words is also in held-in/);
    writeSplits({ 'held-in': ['count-words'], 'held-out': ['greet-script-args'], sealed: [] });
    expect(loadSuite(root).tasks.map((task) => task.split)).toEqual(['held-in', 'held-out']);
  });

  it('reports a bad task.toml with its path and field, and a missing file', () => {
    const folder = join(root, 'suite', 'count-words');
    const toml = join(folder, 'task.toml');
    const original = readFileSync(toml, 'utf8');
    try {
      writeFileSync(toml, original.replace('difficulty = "easy"', 'difficulty = "trivial"'));
      expect(() => loadTask(folder)).toThrow(/count-words\/task\.toml: metadata\.difficulty: /);
      writeFileSync(toml, original.replace('timeout_sec = 120', 'timeout_sec = "soon"'));
      expect(() => loadTask(folder)).toThrow(/task\.toml: agent\.timeout_sec: /);
      writeFileSync(
        toml,
        original.replace('required_artifacts = ["out/top-words.txt"]', 'required_artifacts = ["/etc/passwd"]'),
      );
      expect(() => loadTask(folder)).toThrow(/metadata\.required_artifacts\.0: must be relative to the workspace/);
      writeFileSync(toml, original.replace('[agent]', '[agent\n'));
      expect(() => loadTask(folder)).toThrow(/task\.toml:\d+: expected `\[section\]` or `key = value`/);
    } finally {
      writeFileSync(toml, original);
    }
    rmSync(join(folder, 'tests', 'test.sh'));
    expect(() => loadTask(folder)).toThrow(InputError);
    expect(() => loadTask(folder)).toThrow(/count-words\/tests\/test\.sh: missing tests\/test\.sh/);
  });

  it('parses the TOML that task files use', () => {
    expect(
      parseToml(
        'version = "1.0" # note\n[metadata]\ntags = [\n  "a", # first\n  "b#c",\n]\nn = 1_000\nok = true\nname = \'lit\\eral\'\n[a.b]\nx = 1.5\n',
        'x.toml',
      ),
    ).toEqual({
      version: '1.0',
      metadata: { tags: ['a', 'b#c'], n: 1000, ok: true, name: 'lit\\eral' },
      a: { b: { x: 1.5 } },
    });
    expect(() => parseToml('a = 1\na = 2\n', 'x.toml')).toThrow('x.toml:2: key a is defined twice');
    expect(() => parseToml('a = nope\n', 'x.toml')).toThrow(/x\.toml:1: a: unsupported value/);
  });
});

describe.skipIf(findBubblewrap() === undefined)('every task in the sandbox', () => {
  let sandbox: Sandbox;
  beforeAll(async () => {
    sandbox = await openSandbox();
  });

  /** Sets the task up, lets `act` work in the workspace, runs the verifier; returns the reward and the failures. */
  async function attempt(task: Task, act: (trial: ReturnType<Sandbox['createTrial']>) => Promise<void>) {
    const trial = sandbox.createTrial();
    try {
      if (task.environmentFolder) {
        const setup = await trial.runSetup(task.environmentFolder, limits);
        expect(setup.exitCode, `${task.id} setup: ${setup.output}`).toBe(0);
      }
      await act(trial);
      const { logsFolder } = await trial.runVerifier(task.testsFolder, limits);
      const verdict = readVerdict(logsFolder);
      return { task: task.id, reward: verdict.reward, tests: verdict.tests };
    } finally {
      await trial.dispose();
    }
  }

  it('fails every task on a workspace where only the setup ran, naming missing required files', async () => {
    const results = await inPairs(suite.tasks, (task) => attempt(task, async () => {}));
    for (const result of results) {
      expect(result.reward, result.task).toBe(0);
      expect(
        result.tests.some((test) => test.status === 'failed'),
        result.task,
      ).toBe(true);
    }
    const missing = results
      .find((result) => result.task === 'count-words')
      ?.tests.find((test) => test.status === 'failed');
    expect(missing?.message).toBe('missing required file out/top-words.txt');
  });

  it('passes the shell-state tasks when their steps run in one session, and fails them in fresh processes', async () => {
    const inSession = await inPairs(shellStateTasks, (task) =>
      attempt(task, async (trial) => {
        const session = await trial.workspace.openSession();
        for (const step of steps(task)) await session.run(step, limits);
        await session.close();
      }),
    );
    for (const result of inSession) expect(result.reward, `${result.task} in one session`).toBe(1);
    const fresh = await inPairs(shellStateTasks, (task) =>
      attempt(task, async (trial) => {
        for (const step of steps(task)) await trial.workspace.exec(step, limits);
      }),
    );
    for (const result of fresh) expect(result.reward, `${result.task} in fresh processes`).toBe(0);
  });
});
