import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { describeSchemaError, type Outcome } from '../core/index.js';
import {
  type Adapter,
  eventItem,
  type ParsedReject,
  type ParseItem,
  type ParseOptions,
  rejectItem,
  type SourceUnit,
} from './adapter.js';
import { decodeUtf8, stringifyRaw } from './atif.js';
import { parseJson } from './json-text.js';

const FORMAT = 'swe-agent';
const AGENT = 'SWE-agent';

/**
 * SWE-agent's special commands. The system prompt of a trajectory lists the ones that run used; these cover runs
 * whose prompt does not (SWE-agent 1.x tool bundles). Any other action is a shell command and becomes tool `bash`.
 */
const DEFAULT_COMMANDS = [
  'open',
  'goto',
  'scroll_down',
  'scroll_up',
  'create',
  'submit',
  'search_dir',
  'search_file',
  'find_file',
  'edit',
  'insert',
  'append',
  'str_replace_editor',
  'filemap',
];

/** An action the harness writes itself when it stops the agent, e.g. `exit_cost`: no command was run. */
const HARNESS_EXIT = /^exit_[a-z_]+$/;

const TrajectoryFile = z.object({
  environment: z.unknown().optional(),
  trajectory: z.array(z.unknown()),
  history: z.array(z.unknown()).optional(),
  info: z
    .object({
      exit_status: z.string().nullable().optional(),
      submission: z.string().nullable().optional(),
      model_stats: z
        .object({
          tokens_sent: z.number().int().nonnegative().optional(),
          tokens_received: z.number().int().nonnegative().optional(),
          api_calls: z.number().int().nonnegative().optional(),
          instance_cost: z.number().nonnegative().optional(),
        })
        .optional()
        .catch(undefined),
    })
    .optional(),
});

const TrajectoryEntry = z.object({
  action: z.string(),
  observation: z.string().nullable().optional(),
  response: z.string().nullable().optional(),
  thought: z.string().nullable().optional(),
  state: z.unknown().optional(),
});
type TrajectoryEntry = z.infer<typeof TrajectoryEntry>;

const HistoryMessage = z.object({
  role: z.string(),
  content: z.unknown(),
  is_demo: z.boolean().optional(),
});

/**
 * The evaluation report SWE-bench-style harnesses write (`results/results.json` beside `trajs/`): lists of instance
 * ids per verdict. Multi-SWE-bench names the resolved list `resolved`, SWE-bench `resolved_ids`.
 */
const ids = z.array(z.string()).optional();
const EvaluationResults = z.object({
  resolved: ids,
  resolved_ids: ids,
  unresolved_ids: ids,
  empty_patch_ids: ids,
  error_ids: ids,
  incomplete_ids: ids,
});
type EvaluationResults = z.infer<typeof EvaluationResults>;

export interface SweAgentVerdict {
  outcome: Outcome;
  failureReason?: string;
  /** The evaluation list the instance was found in, e.g. `empty_patch`; absent without a results file. */
  label?: string;
}

/**
 * SWE-agent `.traj` files: one trajectory per task instance. Each trajectory entry becomes an agent step, its action
 * a tool call (tool = the special command, or `bash` for a shell command) and its observation the tool result. The
 * verdict comes from the evaluation report next to the `trajs/` folder; see `decideSweAgentOutcome`.
 */
export const sweAgentAdapter: Adapter = {
  format: FORMAT,
  description: 'SWE-agent trajectories (*.traj), outcomes from results/results.json beside trajs/',
  claimsFile(file) {
    return /\.traj$/i.test(file);
  },
  parse(unit: SourceUnit, options: ParseOptions): AsyncIterable<ParseItem> {
    return parseTrajectory(unit.path, options);
  },
};

/**
 * Decides a trajectory's outcome. The evaluation report wins: resolved → passed; unresolved or empty patch → failed;
 * an evaluation error → invalid (the harness could not run the tests, which says nothing about the agent); an
 * incomplete instance → invalid. Without a verdict in the report, a missing `exit_status` still marks the run as
 * incomplete (it stopped before the agent exited) and anything else is `unknown`.
 */
export function decideSweAgentOutcome(
  instanceId: string,
  results: EvaluationResults | undefined,
  exitStatus: string | null | undefined,
): SweAgentVerdict {
  const exit = exitStatus && exitStatus !== 'submitted' ? ` (exit_status: ${exitStatus})` : '';
  const listed = (list: string[] | undefined) => list?.includes(instanceId) === true;
  if (results) {
    if (listed(results.resolved) || listed(results.resolved_ids)) return { outcome: 'passed', label: 'resolved' };
    if (listed(results.error_ids)) {
      return { outcome: 'invalid', failureReason: `evaluation_error${exit}`, label: 'error' };
    }
    if (listed(results.empty_patch_ids)) {
      return { outcome: 'failed', failureReason: `empty_patch${exit}`, label: 'empty_patch' };
    }
    if (listed(results.unresolved_ids)) {
      return { outcome: 'failed', failureReason: `unresolved${exit}`, label: 'unresolved' };
    }
    if (listed(results.incomplete_ids)) return { outcome: 'invalid', failureReason: 'incomplete', label: 'incomplete' };
  }
  if (exitStatus === null || exitStatus === undefined) return { outcome: 'invalid', failureReason: 'incomplete' };
  return { outcome: 'unknown' };
}

/**
 * The evaluation reports already rejected in one import, keyed by the options object that `ingestPaths` hands to every
 * unit of that import: a broken report is rejected once, not once for each trajectory beside it.
 */
const reportedResults = new WeakMap<ParseOptions, Set<string>>();

async function* parseTrajectory(file: string, options: ParseOptions): AsyncGenerator<ParseItem> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    yield rejectItem(FORMAT, file, 'file', `cannot read the trajectory: ${(error as Error).message}`, '');
    return;
  }
  const decoded = decodeUtf8(bytes);
  if (!('text' in decoded)) {
    yield rejectItem(FORMAT, file, decoded.position, decoded.reason, bytes.toString('utf8'));
    return;
  }
  const text = decoded.text;
  const parsed = parseJson(text);
  if (!parsed.ok) {
    yield rejectItem(FORMAT, file, parsed.position, `invalid trajectory JSON: ${parsed.reason}`, text);
    return;
  }
  const trajectory = TrajectoryFile.safeParse(parsed.value);
  if (!trajectory.success) {
    const reason = `not a SWE-agent trajectory (expected {trajectory: [...], info: {...}}): ${describeSchemaError(trajectory.error)}`;
    yield rejectItem(FORMAT, file, '$', reason, text);
    return;
  }

  const instanceId = basename(file).replace(/\.traj$/i, '');
  const runDirectory = findRunDirectory(file, instanceId);
  const runId = `${FORMAT}:${basename(runDirectory)}:${instanceId}`;
  const source = (position: string) => ({ format: FORMAT, file, position });
  const identity = await readRunIdentity(runDirectory);
  const model = options.model ?? identity.model;
  const results = await readEvaluationResults(runDirectory);
  if (results.reject) {
    const reported = reportedResults.get(options) ?? new Set<string>();
    reportedResults.set(options, reported);
    if (!reported.has(results.reject.reject.file ?? '')) yield results.reject;
    reported.add(results.reject.reject.file ?? '');
  }

  const { info, history } = trajectory.data;
  const stats = info?.model_stats;
  const instruction = findInstruction(history ?? []);
  const verdict = decideSweAgentOutcome(instanceId, results.value, info?.exit_status);
  const metadata: Record<string, unknown> = {
    exitStatus: info?.exit_status ?? null,
    hasSubmission: typeof info?.submission === 'string' && info.submission.trim() !== '',
  };
  if (typeof trajectory.data.environment === 'string') metadata.environment = trajectory.data.environment;
  if (stats?.api_calls !== undefined) metadata.apiCalls = stats.api_calls;
  if (results.file) metadata.resultsFile = results.file;
  if (verdict.label) metadata.evaluationLabel = verdict.label;

  yield eventItem({
    id: `${runId}#start`,
    runId,
    type: 'run-start',
    source: source('info'),
    data: {
      task: instanceId,
      dataset: options.dataset,
      model,
      agent: identity.agent ?? AGENT,
      instruction,
      metadata,
    },
  });

  const commands = new Set([...DEFAULT_COMMANDS, ...listSpecialCommands(history ?? [])]);
  for (const [index, value] of trajectory.data.trajectory.entries()) {
    const position = `trajectory[${index}]`;
    const entry = TrajectoryEntry.safeParse(value);
    if (!entry.success) {
      const reason = `trajectory entry is not {action, observation, thought, response}: ${describeSchemaError(entry.error)}`;
      yield rejectItem(FORMAT, file, position, reason, stringifyRaw(value));
      continue;
    }
    yield* stepEvents(runId, index + 1, entry.data, commands, model, source(position));
  }

  yield eventItem({
    id: `${runId}#end`,
    runId,
    type: 'run-end',
    source: source('info'),
    data: {
      outcome: verdict.outcome,
      failureReason: verdict.failureReason,
      promptTokens: stats?.tokens_sent,
      completionTokens: stats?.tokens_received,
      costUsd: stats?.instance_cost,
    },
  });
}

function* stepEvents(
  runId: string,
  step: number,
  entry: TrajectoryEntry,
  commands: ReadonlySet<string>,
  model: string | undefined,
  source: { format: string; file: string; position: string },
): Generator<ParseItem> {
  const action = entry.action.trim();
  const observation = entry.observation ?? undefined;
  const harnessExit = HARNESS_EXIT.test(action) ? action : undefined;
  const extra: Record<string, unknown> = {};
  const state = parseState(entry.state);
  if (state !== undefined) extra.state = state;
  if (harnessExit) extra.harnessExit = harnessExit;
  // Without a command, the observation has no tool result to live in; keep it on the step.
  if ((harnessExit || action === '') && observation) extra.observation = observation;

  yield eventItem({
    id: `${runId}#step-${step}`,
    runId,
    type: 'step-create',
    source,
    data: {
      step,
      // The harness, not the model, writes the exit entry ("Exit due to cost limit").
      role: harnessExit ? 'system' : 'agent',
      message: entry.response ?? entry.thought ?? '',
      reasoning: entry.thought ?? undefined,
      model,
      extra: Object.keys(extra).length > 0 ? extra : undefined,
    },
  });
  if (harnessExit || action === '') return;

  const callId = String(step);
  const firstWord = action.split(/\s+/, 1)[0] ?? '';
  yield eventItem({
    id: `${runId}#call-${callId}`,
    runId,
    type: 'tool-call',
    source,
    data: {
      step,
      callId,
      tool: commands.has(firstWord) ? firstWord : 'bash',
      arguments: { command: action },
      command: action,
    },
  });
  if (observation === undefined) return;
  yield eventItem({
    id: `${runId}#result-${callId}`,
    runId,
    type: 'tool-result',
    source,
    data: { step, callId, output: observation },
  });
}

/**
 * The folder that names the run: the one holding `trajs/` (Multi-SWE-bench, SWE-bench experiments), the one
 * holding `<instance>/<instance>.traj` (SWE-agent 1.x), else the trajectory's own folder.
 */
function findRunDirectory(file: string, instanceId: string): string {
  const parent = dirname(file);
  const name = basename(parent);
  return name === 'trajs' || name === 'trajectories' || name === instanceId ? dirname(parent) : parent;
}

/**
 * Model and agent from the run folder: `metadata.yaml` (`name: SWE-agent + gpt-4o`) where present, else a folder
 * named `20240825_SWE-agent_<model>` or SWE-agent's own `<model>__<dataset>__<config>__t-<temperature>…`. Nothing is guessed otherwise.
 */
async function readRunIdentity(runDirectory: string): Promise<{ model?: string; agent?: string }> {
  const metadata = await readFile(join(runDirectory, 'metadata.yaml'), 'utf8').catch(() => undefined);
  const name = metadata?.match(/^name:\s*(.+?)\s*$/m)?.[1]?.replace(/^(['"])(.*)\1$/, '$2');
  if (name) {
    const [agent, model] = name.split(/\s+\+\s+/, 2);
    return model ? { agent, model } : { model: name };
  }
  const folder = basename(runDirectory);
  const experiment = folder.match(/^\d{8}_SWE-agent_(.+)$/i)?.[1];
  if (experiment) return { model: experiment };
  const sweAgentRun = folder.match(/^(.+?)__.+__t-\d/)?.[1];
  return sweAgentRun ? { model: sweAgentRun } : {};
}

async function readEvaluationResults(
  runDirectory: string,
): Promise<{ value?: EvaluationResults; file?: string; reject?: ParsedReject }> {
  for (const file of [join(runDirectory, 'results', 'results.json'), join(runDirectory, 'results.json')]) {
    const bytes = await readFile(file).catch((error: NodeJS.ErrnoException) =>
      error.code === 'ENOENT' ? undefined : error,
    );
    if (bytes === undefined) continue;
    if (bytes instanceof Error) {
      const reason = `cannot read the evaluation results, outcomes left unknown: ${bytes.message}`;
      return { reject: rejectItem(FORMAT, file, 'file', reason, '') };
    }
    const decoded = decodeUtf8(bytes);
    if (!('text' in decoded)) {
      const reason = `${decoded.reason}; outcomes left unknown`;
      return { reject: rejectItem(FORMAT, file, decoded.position, reason, bytes.toString('utf8')) };
    }
    const text = decoded.text;
    const parsed = parseJson(text);
    if (!parsed.ok) {
      const reason = `invalid evaluation results JSON, outcomes left unknown: ${parsed.reason}`;
      return { reject: rejectItem(FORMAT, file, parsed.position, reason, text) };
    }
    const results = EvaluationResults.safeParse(parsed.value);
    if (!results.success) {
      const reason = `evaluation results lack the id lists (resolved, unresolved_ids, …), outcomes left unknown: ${describeSchemaError(results.error)}`;
      return { reject: rejectItem(FORMAT, file, '$', reason, text) };
    }
    return { value: results.data, file };
  }
  return {};
}

/** The task statement: the first user message that is not a demonstration. */
function findInstruction(history: readonly unknown[]): string | undefined {
  for (const value of history) {
    const message = HistoryMessage.safeParse(value);
    if (message.success && message.data.role === 'user' && message.data.is_demo !== true) {
      return messageText(message.data.content);
    }
  }
  return undefined;
}

/** The command names the run's system prompt documents (`open:\n  docstring: …`). */
function listSpecialCommands(history: readonly unknown[]): string[] {
  const system = HistoryMessage.safeParse(history[0]);
  if (!system.success || system.data.role !== 'system') return [];
  const text = messageText(system.data.content) ?? '';
  return [...text.matchAll(/^([A-Za-z_][\w-]*):\n\s+docstring:/gm)].map((match) => match[1] ?? '');
}

function messageText(content: unknown): string | undefined {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return undefined;
  const texts = content.map((part) => (typeof part?.text === 'string' ? part.text : '')).filter((text) => text !== '');
  return texts.length > 0 ? texts.join('\n') : undefined;
}

/** SWE-agent stores the shell state (`open_file`, `working_dir`) as a JSON string; older runs as an object. */
function parseState(state: unknown): unknown {
  if (typeof state !== 'string') return state ?? undefined;
  if (state.trim() === '') return undefined;
  try {
    return JSON.parse(state);
  } catch {
    return state;
  }
}
