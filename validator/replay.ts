import {
  type AgentSession,
  type CommandResult,
  createMiddleware,
  type HarnessSpec,
  type Middleware,
  type MiddlewareEntry,
  type ToolInvocation,
  type ToolOutcome,
  type ToolRecord,
} from '../harness/index.js';
import type { LoggedCall, LoggedRun } from './logged-run.js';
import { shadowArtifactCheck, shadowDependencyPrecheck, shadowPersistentShell } from './shadow-middleware.js';

/**
 * Shadow replay: a candidate harness's middleware and rules, run over logged runs without executing anything. Each
 * logged turn goes through the hooks the live runtime calls (before and after the model call, before and after each
 * tool call, before finish) with the logged outcomes, and every place the candidate would have acted is recorded.
 * Middleware that only read the run's history run as they are; those that need the live environment are simulated
 * from the logged evidence (`shadow-middleware.ts`). All functions here take values and return values.
 */

export type InterventionKind = 'block' | 'warn' | 'inject' | 'refuse-finish' | 'rewrite' | 'state';

/** One place a candidate would have acted in a logged run. */
export interface Intervention {
  /** The agent step of the call (or turn) it acted on. */
  readonly step: number;
  readonly callId?: string;
  readonly middleware: string;
  readonly kind: InterventionKind;
  readonly message: string;
  /** Decided by a stand-in from logged evidence rather than the middleware itself. */
  readonly simulated: boolean;
}

export interface ShadowTrace {
  readonly runId: string;
  readonly task: string;
  readonly outcome: LoggedRun['outcome'];
  readonly interventions: readonly Intervention[];
  /** The first step at which the candidate acted. */
  readonly firstStep?: number;
  /** Where the run finished: a logged finish call, or (`finishAssumed`) the end of a run that did not stop early. */
  readonly finishStep?: number;
  readonly finishAssumed: boolean;
}

export interface ShadowOptions {
  /** Files each task declares as required (the bundled suite's `required_artifacts`), by task id. */
  readonly taskArtifacts?: ReadonlyMap<string, readonly string[]>;
  /** Where the workspace appears to the agent, to read instruction paths such as `/workspace/out.txt`. */
  readonly agentPath?: string;
}

/** Logged tool names that end a run the way `finish` does. */
const FINISH_TOOLS = new Set([
  'finish',
  'submit',
  'task_complete',
  'mark_task_complete',
  'complete_task',
  'attempt_completion',
]);

/** Failure reasons of runs that stopped without the agent declaring it was done: no finish hook would have run. */
const STOPPED_EARLY =
  /budget|timeout|timed[ _-]?out|time[ _-]?limit|wall[ _-]?time|max[ _-]?(turns|steps|iterations)|exit_cost|cost[ _-]?limit|context|interrupted|model_error|no_tool_call|exception|error/i;

/** The invocation the live runtime would have built for a logged call. */
export function invocationOf(call: LoggedCall): ToolInvocation {
  const command =
    call.command ?? (typeof call.arguments.command === 'string' ? (call.arguments.command as string) : undefined);
  const name = FINISH_TOOLS.has(call.tool) ? 'finish' : command !== undefined ? 'shell' : call.tool;
  return {
    callId: call.callId,
    name,
    arguments: call.arguments,
    ...(name === 'shell' && command !== undefined ? { command } : {}),
  };
}

function outcomeOf(call: LoggedCall): ToolOutcome {
  return {
    output: call.output,
    ...(call.exitCode !== undefined ? { exitCode: call.exitCode } : {}),
    ...(call.error !== undefined ? { error: call.error } : {}),
    notes: [],
  };
}

interface ShadowHook {
  readonly middleware: Middleware;
  readonly simulated: boolean;
  /** The kind of intervention its added notes stand for (a persistent shell changes state, not messages). */
  readonly noteKind: InterventionKind;
}

/** The built-in middleware order of `createMiddleware`: these two first, then the rest as listed, then the rules. */
const FIRST: readonly MiddlewareEntry['name'][] = ['persistent-shell', 'output-normalizer'];

function buildHooks(spec: HarnessSpec, run: LoggedRun, options: ShadowOptions): ShadowHook[] {
  const ordered = [
    ...spec.middleware.filter((entry) => FIRST.includes(entry.name)),
    ...spec.middleware.filter((entry) => !FIRST.includes(entry.name)),
  ];
  const hooks = ordered.map((entry): ShadowHook => {
    switch (entry.name) {
      case 'persistent-shell':
        return { middleware: shadowPersistentShell(run), simulated: true, noteKind: 'state' };
      case 'dependency-precheck':
        return { middleware: shadowDependencyPrecheck(run, entry), simulated: true, noteKind: 'inject' };
      case 'artifact-check':
        return {
          middleware: shadowArtifactCheck(run, entry, {
            declared: options.taskArtifacts?.get(run.task) ?? [],
            agentPath: options.agentPath ?? '/workspace',
          }),
          simulated: true,
          noteKind: 'inject',
        };
      default: {
        const [middleware] = createMiddleware({ ...spec, middleware: [entry], rules: [] });
        return { middleware: middleware!, simulated: false, noteKind: 'inject' };
      }
    }
  });
  if (spec.rules.length > 0) {
    const [rules] = createMiddleware({ ...spec, middleware: [], rules: spec.rules });
    hooks.push({ middleware: rules!, simulated: false, noteKind: 'inject' });
  }
  return hooks;
}

/** Whether a run ended with the agent declaring itself done, so the finish hooks would have run at its end. */
function endsWithFinish(run: LoggedRun): boolean {
  if (run.outcome === 'invalid') return false;
  return run.failureReason === undefined || !STOPPED_EARLY.test(run.failureReason);
}

/**
 * Replays one logged run through a candidate harness's middleware and rules, in shadow: nothing runs, and every
 * place the candidate would have blocked or warned about a call, added a message, rewritten an output, changed the
 * shell's state or refused the finish is returned with its step. The approximations are listed in
 * `SHADOW_APPROXIMATIONS`.
 */
export async function shadowReplay(
  spec: HarnessSpec,
  run: LoggedRun,
  options: ShadowOptions = {},
): Promise<ShadowTrace> {
  const hooks = buildHooks(spec, run, options);
  const interventions: Intervention[] = [];
  const history: ToolRecord[] = [];
  let turn = 0;
  let atFinish = false;
  const notAvailable = (what: string) => () => {
    throw new Error(`${what} is not available in shadow replay: nothing runs`);
  };
  const checkResult = (): CommandResult => ({
    output: '(not run in shadow replay)',
    exitCode: atFinish && run.outcome === 'failed' ? 1 : 0,
    timedOut: false,
    outputTruncated: false,
    durationMs: 0,
  });
  const session: AgentSession = {
    runId: run.runId,
    task: {
      id: run.task,
      directory: '',
      instruction: run.instruction ?? '',
      ...(run.split !== undefined ? { split: run.split } : {}),
      requiredArtifacts: options.taskArtifacts?.get(run.task) ?? [],
      agentTimeoutSec: spec.budgets.wallTimeSec,
    },
    workspace: {
      hostPath: '',
      agentPath: options.agentPath ?? '/workspace',
      exec: notAvailable('a workspace command'),
      openSession: notAvailable('a shell session'),
    },
    spec,
    budgets: spec.budgets,
    get turn() {
      return turn;
    },
    history,
    signal: new AbortController().signal,
    shell: notAvailable('the shell'),
    runCheck: async () => checkResult(),
  };
  const record = (hook: ShadowHook, step: number, kind: InterventionKind, message: string, callId?: string) =>
    interventions.push({
      step,
      ...(callId !== undefined ? { callId } : {}),
      middleware: hook.middleware.name,
      kind,
      message,
      simulated: hook.simulated,
    });

  const finish = async (step: number, invocation: ToolInvocation) => {
    atFinish = true;
    for (const hook of hooks) {
      const verdict = await hook.middleware.beforeFinish?.(session, invocation);
      if (verdict) {
        record(hook, step, 'refuse-finish', verdict.refuse, invocation.callId);
        break;
      }
    }
    atFinish = false;
  };

  for (const hook of hooks) await hook.middleware.start?.(session);
  let finishStep: number | undefined;
  for (const loggedTurn of run.turns) {
    if (finishStep !== undefined) break;
    for (const hook of hooks) {
      for (const message of (await hook.middleware.beforeModelCall?.(session)) ?? [])
        record(hook, loggedTurn.step, 'inject', message);
    }
    turn += 1;
    for (const hook of hooks) {
      const replaced = await hook.middleware.afterModelCall?.(session, { content: loggedTurn.message, toolCalls: [] });
      if (replaced) record(hook, loggedTurn.step, 'rewrite', 'the model reply would have been replaced');
    }
    for (const call of loggedTurn.calls) {
      const invocation = invocationOf(call);
      const logged = outcomeOf(call);
      const warnings: string[] = [];
      let blocked = false;
      for (const hook of hooks) {
        const decision = await hook.middleware.beforeToolCall?.(session, invocation);
        if (decision && 'block' in decision) {
          record(hook, call.step, 'block', decision.block, call.callId);
          blocked = true;
          break;
        }
        if (decision && 'warn' in decision) {
          record(hook, call.step, 'warn', decision.warn, call.callId);
          warnings.push(decision.warn);
        }
      }
      if (invocation.name === 'finish') {
        if (!blocked) await finish(call.step, invocation);
        finishStep = call.step;
        break;
      }
      let outcome: ToolOutcome = { ...logged, notes: warnings };
      if (!blocked) {
        for (const hook of hooks) {
          const changed = await hook.middleware.afterToolCall?.(session, invocation, outcome);
          if (!changed) continue;
          const added = changed.notes.slice(outcome.notes.length);
          for (const note of added) record(hook, call.step, hook.noteKind, note, call.callId);
          if (changed.output !== outcome.output)
            record(hook, call.step, 'rewrite', 'the output the model reads would have been rewritten', call.callId);
          outcome = changed;
        }
      }
      // The logged run went on with what really happened, so the history keeps the logged outcome (see
      // SHADOW_APPROXIMATIONS.trajectory), with the notes the candidate would have added.
      history.push({ turn, invocation, outcome: { ...logged, notes: outcome.notes }, blocked: false });
    }
  }
  let finishAssumed = false;
  if (finishStep === undefined && endsWithFinish(run)) {
    finishStep = run.turns.at(-1)?.step ?? 0;
    finishAssumed = true;
    await finish(finishStep, { callId: 'shadow-finish', name: 'finish', arguments: {} });
  }
  for (const hook of hooks) await hook.middleware.end?.(session);
  const firstStep = interventions.length > 0 ? Math.min(...interventions.map((item) => item.step)) : undefined;
  return {
    runId: run.runId,
    task: run.task,
    outcome: run.outcome,
    interventions,
    ...(firstStep !== undefined ? { firstStep } : {}),
    ...(finishStep !== undefined ? { finishStep } : {}),
    finishAssumed,
  };
}
