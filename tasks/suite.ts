import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, normalize, relative, resolve } from 'node:path';
import { z } from 'zod';
import { InputError, UserError } from '../core/index.js';
import type { TaskSpec } from '../harness/index.js';
import { parseToml } from './toml.js';

/**
 * The bundled task suite and its splits, read from folders in Harbor's layout and validated before anything runs:
 * every error names the file and the field and says what is wrong.
 */

/** The folder holding `splits.json` and `suite/`: this package's own suite unless another is given. */
export const DEFAULT_SUITE_ROOT = resolve(import.meta.dirname);

/** The dataset name under which trials of this suite are logged. */
export const SUITE_DATASET = 'selfharness-tasks';

export const SPLITS = ['held-in', 'held-out', 'sealed'] as const;
export type Split = (typeof SPLITS)[number];

const workspacePath = z
  .string()
  .min(1)
  .refine((path) => !isAbsolute(path) && !normalize(path).startsWith('..'), 'must be relative to the workspace');

export const TaskToml = z.object({
  version: z.string().optional(),
  metadata: z.looseObject({
    category: z.string().min(1),
    difficulty: z.enum(['easy', 'medium', 'hard']),
    tags: z.array(z.string()).default([]),
    required_artifacts: z.array(workspacePath).default([]),
  }),
  agent: z.looseObject({ timeout_sec: z.number().positive() }),
  verifier: z.looseObject({ timeout_sec: z.number().positive() }),
});

export const SplitsFile = z.strictObject({
  'held-in': z.array(z.string().min(1)),
  'held-out': z.array(z.string().min(1)),
  sealed: z.array(z.string().min(1)),
});

/** A task as the runner needs it: what the agent sees (`TaskSpec`) plus where setup, solution and tests live. */
export interface Task extends TaskSpec {
  readonly split?: Split;
  readonly category: string;
  readonly difficulty: string;
  readonly tags: readonly string[];
  readonly requiredArtifacts: readonly string[];
  readonly verifierTimeoutSec: number;
  /** The `environment/` folder when it holds a `setup.sh`. */
  readonly environmentFolder?: string;
  readonly solutionPath: string;
  readonly testsFolder: string;
}

export interface Suite {
  readonly root: string;
  readonly tasks: readonly Task[];
  readonly splits: Readonly<Record<Split, readonly string[]>>;
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(file)'}: ${issue.message}`)
    .join('; ');
}

function readText(path: string, what: string): string {
  if (!existsSync(path)) throw new InputError(`${path}: missing ${what}`);
  return readFileSync(path, 'utf8');
}

/** Reads and validates one task folder. */
export function loadTask(directory: string, split?: Split): Task {
  const folder = resolve(directory);
  const id = folder.split('/').at(-1) ?? folder;
  if (!/^[a-z0-9][a-z0-9-]*$/.test(id)) {
    throw new InputError(`${folder}: a task folder's name is its id: lowercase letters, digits and dashes only`);
  }
  const tomlPath = join(folder, 'task.toml');
  const parsed = TaskToml.safeParse(parseToml(readText(tomlPath, 'task.toml'), tomlPath));
  if (!parsed.success) throw new InputError(`${tomlPath}: ${describeIssues(parsed.error)}`);
  const instructionPath = join(folder, 'instruction.md');
  const instruction = readText(instructionPath, 'instruction.md').trim();
  if (instruction === '') throw new InputError(`${instructionPath}: the instruction is empty`);
  const solutionPath = join(folder, 'solution', 'solve.sh');
  readText(solutionPath, 'solution/solve.sh (the reference solution)');
  const testsFolder = join(folder, 'tests');
  readText(join(testsFolder, 'test.sh'), 'tests/test.sh (the verifier)');
  const environmentFolder = join(folder, 'environment');
  const { metadata, agent, verifier } = parsed.data;
  return {
    id,
    directory: folder,
    instruction,
    split,
    category: metadata.category,
    difficulty: metadata.difficulty,
    tags: metadata.tags,
    requiredArtifacts: metadata.required_artifacts,
    agentTimeoutSec: agent.timeout_sec,
    verifierTimeoutSec: verifier.timeout_sec,
    environmentFolder: existsSync(join(environmentFolder, 'setup.sh')) ? environmentFolder : undefined,
    solutionPath,
    testsFolder,
  };
}

/**
 * Reads a suite: `splits.json` and every folder under `suite/`. Each task must be in exactly one split and each
 * split entry must name a task folder.
 */
export function loadSuite(root: string = DEFAULT_SUITE_ROOT): Suite {
  const suiteRoot = resolve(root);
  const splitsPath = join(suiteRoot, 'splits.json');
  const tasksFolder = join(suiteRoot, 'suite');
  if (!existsSync(tasksFolder) || !statSync(tasksFolder).isDirectory()) {
    throw new UserError(
      `${suiteRoot} is not a task suite: it has no suite/ folder of tasks. Pass a suite folder with --suite.`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readText(splitsPath, 'splits.json'));
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw new InputError(`${splitsPath}: not valid JSON: ${(error as Error).message}`);
  }
  const splits = SplitsFile.safeParse(raw);
  if (!splits.success) throw new InputError(`${splitsPath}: ${describeIssues(splits.error)}`);
  const folders = readdirSync(tasksFolder, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  const splitOf = new Map<string, Split>();
  for (const split of SPLITS) {
    for (const [position, id] of splits.data[split].entries()) {
      const other = splitOf.get(id);
      if (other) throw new InputError(`${splitsPath}: ${split}.${position}: task ${id} is also in ${other}`);
      if (!folders.includes(id)) {
        throw new InputError(
          `${splitsPath}: ${split}.${position}: no task folder ${relative(suiteRoot, join(tasksFolder, id))}`,
        );
      }
      splitOf.set(id, split);
    }
  }
  const unassigned = folders.filter((id) => !splitOf.has(id));
  if (unassigned.length > 0) {
    throw new InputError(
      `${splitsPath}: tasks in no split: ${unassigned.join(', ')}. Add each to held-in, held-out or sealed.`,
    );
  }
  return {
    root: suiteRoot,
    tasks: folders.map((id) => loadTask(join(tasksFolder, id), splitOf.get(id))),
    splits: splits.data,
  };
}

/**
 * The tasks a selection names: `held-in`, `held-out`, `sealed`, `all`, or task ids, in suite order without repeats.
 * An unknown name is an error that lists what exists.
 */
export function selectTasks(suite: Suite, selectors: readonly string[]): Task[] {
  if (selectors.length === 0)
    throw new UserError('No tasks selected: pass --tasks held-in|held-out|sealed|all or task ids.');
  const chosen = new Set<string>();
  for (const selector of selectors.flatMap((value) => value.split(',')).filter((value) => value !== '')) {
    if (selector === 'all') {
      for (const task of suite.tasks) chosen.add(task.id);
    } else if ((SPLITS as readonly string[]).includes(selector)) {
      for (const id of suite.splits[selector as Split]) chosen.add(id);
    } else if (suite.tasks.some((task) => task.id === selector)) {
      chosen.add(selector);
    } else {
      const near = suite.tasks
        .filter((task) => task.id.includes(selector) || selector.includes(task.id))
        .map((task) => task.id);
      throw new UserError(
        `Unknown task or split "${selector}"${near.length > 0 ? ` (did you mean ${near.slice(0, 3).join(', ')}?)` : ''}. Use held-in, held-out, sealed, all, or one of the ${suite.tasks.length} task ids in ${join(suite.root, 'suite')}.`,
      );
    }
  }
  return suite.tasks.filter((task) => chosen.has(task.id));
}

/**
 * The steps of a reference solution: the blocks of `solve.sh` separated by blank lines, without the `#!` line and
 * without blocks made only of comments. Each step is one command block a model could send as one shell call.
 */
export function splitSolutionSteps(script: string): string[] {
  return script
    .replace(/^#!.*\n/, '')
    .split(/\n[ \t]*\n/)
    .map((block) => block.trim())
    .filter((block) => block.split('\n').some((line) => line.trim() !== '' && !line.trim().startsWith('#')));
}
