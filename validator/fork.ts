import { createHash } from 'node:crypto';
import { type EventLog, SystemError, type TraceEvent, UserError } from '../core/index.js';
import {
  type ChatModel,
  type CreateAgentOptions,
  createMiddleware,
  type ModelRequest,
  type ModelResponse,
  resolveModelFactory,
  runHarness,
  type TrialOutcome,
} from '../harness/index.js';
import {
  createBatchId,
  DEFAULT_SUITE_ROOT,
  loadSuite,
  modelFailure,
  openSandbox,
  readVerdict,
  runEndEvent,
  runVerifyEvent,
  type Sandbox,
  type Task,
} from '../tasks/index.js';
import { type LoggedTurn, loadLoggedRuns } from './logged-run.js';
import { resolveHarness } from './promote.js';

/**
 * Forking a logged run at a step: what would the candidate harness have done from there? The run's task is set up in a
 * fresh sandbox workspace as the trial runner sets it up; the logged model replies before the step are replayed
 * verbatim, so their shell and file tool calls execute again in the new workspace through the candidate harness's
 * runtime (its middleware sees them as it would have live); from the step on, the live model answers, with the
 * conversation so far in front of it. The fork is logged as a new run whose `run-start` names the original
 * (`parentRunId`, relation `continuation`) and the fork point (`metadata.fork`); the replayed steps are marked
 * `copiedContext`. The verifier judges the result as it judges any trial.
 */

export interface ForkOptions {
  /** The logged run to fork. */
  readonly runId: string;
  /** The first step the live model answers; the agent's logged turns before it are replayed. */
  readonly step: number;
  /** The candidate harness: a version id or prefix, or `default`. */
  readonly harness: string;
  /** The live model (`sim:PROFILE`, `openai:MODEL`); default: the logged run's model. */
  readonly model?: string;
  /** The task suite holding the run's task (default: the bundled one). */
  readonly suiteRoot?: string;
  readonly sandbox?: Sandbox;
  readonly environment?: CreateAgentOptions['environment'];
  readonly signal?: AbortSignal;
  /** Recorded in the fork's metadata, e.g. the proposal it tries. */
  readonly metadata?: Record<string, unknown>;
}

export interface ForkResult {
  readonly runId: string;
  readonly parentRunId: string;
  readonly step: number;
  readonly harnessVersion: string;
  readonly model: string;
  /** Logged agent turns replayed before the live model took over, and their tool calls. */
  readonly replayedTurns: number;
  readonly replayedCalls: number;
  readonly outcome: 'passed' | 'failed' | 'invalid';
  readonly reward?: number;
  readonly failureReason?: string;
  readonly detail?: string;
}

/** The dataset forks are logged under, so suite pass rates never count them. */
export const FORK_DATASET = 'selfharness-forks';

const RUN_FACTS = `
SELECT task, model, seed, split, attempt, outcome FROM runs WHERE run_id = $1`;

interface RunFacts extends Record<string, unknown> {
  task: string | null;
  model: string | null;
  seed: bigint | null;
  split: string | null;
  attempt: number | null;
  outcome: string;
}

const SCRIPT_OUTPUT_LIMIT = 64 * 1024;

/**
 * A model that first answers with the logged replies, in order, then hands every later request to the live model.
 * `live` says whether the live model has been asked yet (steps before that are copied context).
 */
export class ReplayThenLiveModel implements ChatModel {
  readonly name: string;
  private next = 0;
  live = false;

  constructor(
    private readonly prefix: readonly LoggedTurn[],
    private readonly liveModel: ChatModel,
  ) {
    this.name = liveModel.name;
  }

  async complete(request: ModelRequest): Promise<ModelResponse> {
    const turn = this.prefix[this.next];
    if (turn === undefined) {
      this.live = true;
      return this.liveModel.complete(request);
    }
    this.next += 1;
    return {
      content: turn.message,
      toolCalls: turn.calls.map((call, index) => ({
        id: `replay-${this.next}-${index}`,
        name: call.tool,
        arguments: { ...call.arguments },
      })),
    };
  }
}

/** The turns replayed when forking at `step`: every logged agent turn before it. A finish among them is an error. */
export function prefixTurns(turns: readonly LoggedTurn[], step: number, runId: string): LoggedTurn[] {
  const prefix = turns.filter((turn) => turn.step < step);
  const finish = prefix.find((turn) => turn.calls.some((call) => call.tool === 'finish'));
  if (finish)
    throw new UserError(
      `Run ${runId} called finish at step ${finish.step}, before step ${step}: fork at step ${finish.step} or earlier.`,
    );
  return prefix;
}

/** Forks a logged run at a step with a candidate harness and model, and logs the fork as a new run. */
export async function forkRun(log: EventLog, options: ForkOptions): Promise<ForkResult> {
  const [facts] = await log.query<RunFacts>(RUN_FACTS, [options.runId]);
  if (!facts)
    throw new UserError(
      `Unknown run ${options.runId}: list runs with \`selfharness sql "SELECT run_id, task, outcome FROM runs"\`.`,
    );
  const [logged] = await loadLoggedRuns(log, { runIds: [options.runId] });
  if (!logged || facts.task === null) throw new UserError(`Run ${options.runId} has no task, so it cannot be forked.`);
  if (!Number.isInteger(options.step) || options.step < 0)
    throw new UserError(`Fork step must be a whole number of at least 0, not ${options.step}.`);
  const prefix = prefixTurns(logged.turns, options.step, options.runId);
  const suite = loadSuite(options.suiteRoot ?? DEFAULT_SUITE_ROOT);
  const task: Task | undefined = suite.tasks.find((entry) => entry.id === facts.task);
  if (!task)
    throw new UserError(
      `Run ${options.runId} is of task ${facts.task}, which is not in the suite at ${suite.root}: pass the suite that holds it.`,
    );
  const modelName = options.model ?? facts.model ?? undefined;
  if (modelName === undefined)
    throw new UserError(`Run ${options.runId} names no model: say which model continues it.`);
  const version = await resolveHarness(log, options.harness);
  const factory = await resolveModelFactory(modelName, options.environment ?? process.env);
  const seed = facts.seed === null ? 0 : Number(facts.seed);
  const model = new ReplayThenLiveModel(prefix, factory({ task, seed }));
  const digest = createHash('sha256')
    .update(JSON.stringify([options.runId, options.step, version.versionId, modelName, createBatchId()]))
    .digest('hex')
    .slice(0, 12);
  const runId = `${options.runId}~fork-${options.step}-${digest}`;
  const replayedCalls = prefix.reduce((total, turn) => total + turn.calls.length, 0);
  const started = new Date();
  await log.appendEvents([
    {
      id: `${runId}#start`,
      runId,
      type: 'run-start',
      time: started.toISOString(),
      data: {
        task: task.id,
        dataset: FORK_DATASET,
        model: modelName,
        harnessVersion: version.versionId,
        ...(facts.split !== null ? { split: facts.split } : {}),
        ...(facts.attempt !== null ? { attempt: Number(facts.attempt) } : {}),
        seed,
        instruction: task.instruction,
        parentRunId: options.runId,
        relation: 'continuation',
        metadata: {
          ...options.metadata,
          fork: { runId: options.runId, step: options.step, replayedTurns: prefix.length, replayedCalls },
        },
      },
    },
  ]);

  const pending: TraceEvent[] = [];
  const end = async (
    outcome: ForkResult['outcome'],
    fields: { reward?: number; failureReason?: string; detail?: string; agent?: TrialOutcome },
    before: readonly TraceEvent[] = [],
  ): Promise<ForkResult> => {
    const endedAt = new Date();
    await log.appendEvents([
      ...pending,
      ...before,
      runEndEvent(runId, outcome, { ...fields, agentOutcome: fields.agent }, started, endedAt),
    ]);
    return {
      runId,
      parentRunId: options.runId,
      step: options.step,
      harnessVersion: version.versionId,
      model: modelName,
      replayedTurns: prefix.length,
      replayedCalls,
      outcome,
      ...(fields.reward !== undefined ? { reward: fields.reward } : {}),
      ...(fields.failureReason ? { failureReason: fields.failureReason } : {}),
      ...(fields.detail ? { detail: fields.detail } : {}),
    };
  };

  const sandbox = options.sandbox ?? (await openSandbox());
  const trial = sandbox.createTrial();
  try {
    if (task.environmentFolder) {
      const setup = await trial.runSetup(task.environmentFolder, {
        timeoutMs: Math.max(60, task.verifierTimeoutSec) * 1000,
        maxOutputBytes: SCRIPT_OUTPUT_LIMIT,
      });
      if (setup.exitCode !== 0)
        return end('invalid', { failureReason: 'setup_failed', detail: setup.output.slice(-500) });
    }
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error('agent time ran out')), task.agentTimeoutSec * 1000);
    const forward = () => controller.abort(new Error('interrupted'));
    options.signal?.addEventListener('abort', forward);
    let agent: TrialOutcome;
    try {
      agent = await runHarness({
        model,
        modelName,
        spec: version.spec,
        middleware: createMiddleware(version.spec),
        context: {
          runId,
          task,
          workspace: trial.workspace,
          seed,
          signal: controller.signal,
          emit: async (events) => {
            for (const event of events)
              pending.push(
                event.type === 'step-create' && !model.live
                  ? { ...event, data: { ...event.data, copiedContext: true } }
                  : event,
              );
          },
        },
      });
    } catch (error) {
      return end('invalid', { failureReason: 'agent_error', detail: (error as Error).message });
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', forward);
    }
    if (options.signal?.aborted) throw new UserError(`Fork ${runId} was interrupted; it stays unfinished in the log.`);
    await trial.workspace.stop();
    const modelFailed = modelFailure(agent);
    if (modelFailed) return end('invalid', { ...modelFailed, agent });
    const verification = await trial.runVerifier(task.testsFolder, {
      timeoutMs: task.verifierTimeoutSec * 1000,
      maxOutputBytes: SCRIPT_OUTPUT_LIMIT,
    });
    const verdict = readVerdict(verification.logsFolder);
    if (verdict.reward === undefined)
      return end('invalid', { failureReason: 'verifier_crashed', detail: verdict.problem ?? '', agent });
    const verified = runVerifyEvent(runId, verdict.reward, verdict.tests);
    if (verdict.reward === 1) return end('passed', { reward: 1, agent }, [verified]);
    const failureReason = agent.finished ? 'tests_failed' : (agent.stopReason ?? 'not_finished');
    return end('failed', { reward: verdict.reward, failureReason, agent }, [verified]);
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw new SystemError(`Forking run ${options.runId} failed: ${(error as Error).message}`, { cause: error });
  } finally {
    await trial.dispose();
  }
}
