import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TraceEvent } from '../../core/index.js';
import {
  createMiddleware,
  defaultHarnessSpec,
  type HarnessSpec,
  parseHarnessSpec,
  runHarness,
  type Workspace,
} from '../../harness/index.js';
import { createSimModelFactory } from '../../harness/models/sim/index.js';
import { loadSuite, selectTasks, type Task } from '../../tasks/index.js';
import { createLocalWorkspace } from '../support/local-workspace.js';

/**
 * The simulated profiles through the real runtime and its built-in middleware, on tasks of the bundled suite, each
 * trial in a temporary workspace (no sandbox: the commands are the reference solution's own). A trial passes when
 * its required files equal the reference solution's. Without middleware each profile fails its own way; the
 * middleware that targets a profile's mechanism raises that profile's pass rate.
 */

const TASK_IDS = ['source-env-report', 'shell-helper-functions', 'render-template-env', 'make-hello-subdir'];
const SEEDS = [1, 2, 3];
const EXEC = { timeoutMs: 60_000, maxOutputBytes: 1_000_000 };

let tasks: Task[] = [];
const expected = new Map<string, Map<string, string>>();
const workspaces: string[] = [];

async function prepareWorkspace(task: Task): Promise<Workspace> {
  const workspace = createLocalWorkspace();
  workspaces.push(workspace.hostPath);
  if (task.environmentFolder) {
    const setup = await workspace.exec(`bash ${join(task.environmentFolder, 'setup.sh')}`, EXEC);
    if (setup.exitCode !== 0) throw new Error(`setup of ${task.id} failed: ${setup.output}`);
  }
  return workspace;
}

function readArtifact(workspace: Workspace, path: string): string | undefined {
  try {
    return readFileSync(join(workspace.hostPath, path), 'utf8');
  } catch {
    return undefined;
  }
}

interface TrialReport {
  readonly passed: boolean;
  readonly finished: boolean;
  readonly missingArtifact: boolean;
  readonly commandNotFound: boolean;
  readonly repeatedFailure: boolean;
  readonly finishRefused: boolean;
}

async function trial(profile: string, task: Task, seed: number, spec: HarnessSpec): Promise<TrialReport> {
  const workspace = await prepareWorkspace(task);
  const events: TraceEvent[] = [];
  const outcome = await runHarness({
    model: createSimModelFactory(profile)({ task, seed }),
    modelName: `sim:${profile}`,
    spec,
    middleware: createMiddleware(spec),
    context: {
      runId: `${profile}-${task.id}-${seed}`,
      task,
      workspace,
      seed,
      signal: new AbortController().signal,
      emit: async (batch) => {
        for (const event of batch) events.push(TraceEvent.parse(event));
      },
    },
  });
  const wanted = expected.get(task.id)!;
  const calls = new Map<string, string>();
  const failures = new Map<string, number>();
  let commandNotFound = false;
  let finishRefused = false;
  for (const event of events) {
    if (event.type === 'tool-call') calls.set(event.data.callId, JSON.stringify(event.data.arguments));
    if (event.type !== 'tool-result') continue;
    const output = String(event.data.output ?? '');
    if (/command not found/.test(output)) commandNotFound = true;
    if (/Finish refused/.test(output)) finishRefused = true;
    if (event.data.exitCode !== undefined && event.data.exitCode !== 0) {
      const key = calls.get(event.data.callId ?? '') ?? '';
      failures.set(key, (failures.get(key) ?? 0) + 1);
    }
  }
  return {
    passed: [...wanted].every(([path, content]) => readArtifact(workspace, path) === content),
    finished: outcome.finished,
    missingArtifact: [...wanted.keys()].some((path) => readArtifact(workspace, path) === undefined),
    commandNotFound,
    repeatedFailure: [...failures.values()].some((count) => count >= 3),
    finishRefused,
  };
}

async function batch(profile: string, spec: HarnessSpec): Promise<TrialReport[]> {
  const reports: TrialReport[] = [];
  for (const task of tasks) for (const seed of SEEDS) reports.push(await trial(profile, task, seed, spec));
  return reports;
}

const share = (reports: readonly TrialReport[], pick: (report: TrialReport) => boolean) =>
  reports.filter(pick).length / reports.length;

/** With SIM_PRINT_RATES set, prints each batch's rates (the figures quoted in the README). */
function report(label: string, reports: readonly TrialReport[]): void {
  if (!process.env.SIM_PRINT_RATES) return;
  const keys = [
    'passed',
    'finished',
    'missingArtifact',
    'commandNotFound',
    'repeatedFailure',
    'finishRefused',
  ] as const;
  console.log(label, Object.fromEntries(keys.map((key) => [key, share(reports, (entry) => entry[key])])));
}
const withMiddleware = (...names: string[]) =>
  parseHarnessSpec({ ...defaultHarnessSpec, middleware: names.map((name) => ({ name })) });

beforeAll(async () => {
  tasks = selectTasks(loadSuite(), TASK_IDS);
  for (const task of tasks) {
    const workspace = await prepareWorkspace(task);
    const solved = await workspace.exec(`bash ${task.solutionPath}`, EXEC);
    if (solved.exitCode !== 0) throw new Error(`the reference solution of ${task.id} fails here: ${solved.output}`);
    expected.set(
      task.id,
      new Map((task.requiredArtifacts ?? []).map((path) => [path, readArtifact(workspace, path) ?? ''] as const)),
    );
  }
});

afterAll(() => {
  for (const path of workspaces) rmSync(path, { recursive: true, force: true });
});

describe('simulated profiles through the real runtime on suite tasks', () => {
  it('late-artifacts leaves required files missing without middleware; the artifact check raises its pass rate', async () => {
    const [base, checked] = await Promise.all([
      batch('late-artifacts', defaultHarnessSpec),
      batch('late-artifacts', withMiddleware('artifact-check')),
    ]);
    report('late-artifacts default', base);
    report('late-artifacts artifact-check', checked);
    expect(share(base, (report) => report.finished && report.missingArtifact)).toBeGreaterThanOrEqual(0.25);
    expect(share(checked, (report) => report.finishRefused)).toBeGreaterThan(0);
    expect(share(checked, (report) => report.passed)).toBeGreaterThan(share(base, (report) => report.passed));
  });

  it('lost-state fails on tasks that need shell state; a persistent shell raises its pass rate', async () => {
    const [base, persistent] = await Promise.all([
      batch('lost-state', defaultHarnessSpec),
      batch('lost-state', withMiddleware('persistent-shell')),
    ]);
    report('lost-state default', base);
    report('lost-state persistent-shell', persistent);
    expect(share(base, (report) => report.passed)).toBeLessThanOrEqual(0.5);
    expect(share(persistent, (report) => report.passed)).toBeGreaterThan(share(base, (report) => report.passed) + 0.2);
  });

  it('blind-retry meets missing programs and repeats failing commands without middleware', async () => {
    const base = await batch('blind-retry', defaultHarnessSpec);
    report('blind-retry default', base);
    expect(share(base, (report) => report.commandNotFound)).toBeGreaterThanOrEqual(0.5);
    expect(share(base, (report) => report.repeatedFailure)).toBeGreaterThan(0);
  });
});
