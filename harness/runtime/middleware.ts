import type { CommandResult, ExecOptions, ModelResponse, TaskSpec, Workspace } from '../contracts.js';
import type { Budgets, HarnessSpec } from '../spec.js';

/**
 * The contract between the runtime and its middleware. The runtime calls the hooks in list order; each middleware is
 * a leaf module that imports these types and is never imported by the runtime. Whatever a middleware tells the model
 * reaches it as ordinary text: a note with a tool result, a user message before the next model call, or the reason a
 * call was blocked or a finish refused.
 */

/** Runs one shell command for the agent; the persistent-shell middleware swaps in a session. */
export type CommandRunner = (command: string, options: ExecOptions) => Promise<CommandResult>;

/** A tool call as the runtime is about to execute it, with arguments already parsed. */
export interface ToolInvocation {
  /** Unique within the run: `<step>-<index>`. */
  readonly callId: string;
  readonly name: string;
  readonly arguments: Readonly<Record<string, unknown>>;
  /** The shell command, for `shell` calls. */
  readonly command?: string;
}

/** What a tool produced, before it is turned into the text the model reads. */
export interface ToolOutcome {
  /** The tool's own output. */
  readonly output: string;
  /** Shell only; absent when the command was killed. */
  readonly exitCode?: number;
  readonly timedOut?: boolean;
  /** Set when the call failed without an exit code to say so (bad arguments, a missing file, a blocked call). */
  readonly error?: string;
  /** Messages from the harness, shown to the model after the output. */
  readonly notes: readonly string[];
}

/** One executed (or blocked) call in the run so far. */
export interface ToolRecord {
  readonly turn: number;
  readonly invocation: ToolInvocation;
  readonly outcome: ToolOutcome;
  readonly blocked: boolean;
}

/** Whether a call's outcome counts as a failure. */
export function isFailedOutcome(outcome: ToolOutcome): boolean {
  return (
    outcome.error !== undefined ||
    outcome.timedOut === true ||
    (outcome.exitCode !== undefined && outcome.exitCode !== 0)
  );
}

/** What middleware may read and use while a trial runs. */
export interface AgentSession {
  readonly runId: string;
  readonly task: TaskSpec;
  readonly workspace: Workspace;
  readonly spec: HarnessSpec;
  readonly budgets: Budgets;
  /** Model calls made so far. */
  readonly turn: number;
  /** Every tool call so far, oldest first. */
  readonly history: readonly ToolRecord[];
  readonly signal: AbortSignal;
  /** How `shell` calls run: a fresh process per call unless a middleware replaces it. */
  shell: CommandRunner;
  /** Runs a harness check in the workspace, in a fresh process, with the per-command budget. */
  runCheck(command: string): Promise<CommandResult>;
}

/** Before a tool call: run it, run it with a warning, or do not run it and tell the model why. */
export type ToolDecision = { readonly block: string } | { readonly warn: string };

export interface Middleware {
  readonly name: string;
  /** Once, before the first model call. */
  start?(session: AgentSession): Promise<void>;
  /** Before each model call: messages to add to the conversation as user messages. */
  beforeModelCall?(session: AgentSession): Promise<readonly string[] | undefined>;
  /** After each model call: a replacement response, or nothing to keep it. */
  afterModelCall?(session: AgentSession, response: ModelResponse): Promise<ModelResponse | undefined>;
  beforeToolCall?(session: AgentSession, call: ToolInvocation): Promise<ToolDecision | undefined>;
  /** After each tool call: a replacement outcome (a changed output, added notes), or nothing. */
  afterToolCall?(session: AgentSession, call: ToolInvocation, outcome: ToolOutcome): Promise<ToolOutcome | undefined>;
  /** When a model call or a tool fails with an exception. */
  onError?(
    session: AgentSession,
    failure: { readonly phase: 'model' | 'tool'; readonly message: string },
  ): Promise<void>;
  /** When the agent calls finish: a reason to refuse, or nothing to accept. */
  beforeFinish?(session: AgentSession, call: ToolInvocation): Promise<{ readonly refuse: string } | undefined>;
  /** Once, when the run ends for any reason (close what `start` opened). */
  end?(session: AgentSession): Promise<void>;
}
