import type { TraceEvent } from '../core/index.js';

/**
 * The plain types that connect the agent runtime (harness/), the models it talks to, and the task runner (tasks/):
 * the runner provides a task and a sandboxed workspace, an agent solves the task in it and emits its steps as events.
 * Nothing here does I/O.
 */

/** A task as the agent side sees it. The runner reads it from a task folder in Harbor's layout. */
export interface TaskSpec {
  readonly id: string;
  /** Host path of the task folder (`task.toml`, `instruction.md`, `solution/solve.sh`, `tests/test.sh`). */
  readonly directory: string;
  readonly instruction: string;
  readonly split?: string;
  readonly category?: string;
  /** Files the instruction requires, relative to the workspace, as the task declares them. */
  readonly requiredArtifacts?: readonly string[];
  /** Wall-clock budget for the agent, seconds. */
  readonly agentTimeoutSec: number;
}

export interface ExecOptions {
  readonly timeoutMs: number;
  /** Output beyond this many bytes is cut, and `outputTruncated` says so. */
  readonly maxOutputBytes: number;
}

export interface CommandResult {
  /** Standard output and standard error, interleaved as the command wrote them. */
  readonly output: string;
  /** `null` when the command was killed (time limit). */
  readonly exitCode: number | null;
  readonly timedOut: boolean;
  readonly outputTruncated: boolean;
  readonly durationMs: number;
}

/** A shell whose state (variables, working directory, activated environments) survives across commands. */
export interface ShellSession {
  run(command: string, options: ExecOptions): Promise<CommandResult>;
  close(): Promise<void>;
}

/**
 * The task's writable workspace inside a sandbox. Commands run in it with the workspace as working directory; the
 * agent addresses files by paths relative to it or under `agentPath`.
 */
export interface Workspace {
  /** Where the workspace lies on the host (file tools read and write here, never outside). */
  readonly hostPath: string;
  /** Where the workspace appears inside the sandbox, e.g. `/workspace`. */
  readonly agentPath: string;
  /** Runs one command in a fresh shell process: nothing carries over to the next command. */
  exec(command: string, options: ExecOptions): Promise<CommandResult>;
  /** Starts a persistent shell in the sandbox. The caller closes it. */
  openSession(): Promise<ShellSession>;
}

/** What an agent gets for one trial. */
export interface TrialContext {
  readonly runId: string;
  readonly task: TaskSpec;
  readonly workspace: Workspace;
  readonly seed: number;
  /** Appends the agent's events (`step-create`, `tool-call`, `tool-result`) to the log, in order. */
  emit(events: readonly TraceEvent[]): Promise<void>;
  /** Aborted when the trial's wall-clock budget runs out or the run is interrupted. */
  readonly signal: AbortSignal;
}

export interface TrialOutcome {
  /** The agent called `finish` (false: it stopped on a budget, an error, or an abort). */
  readonly finished: boolean;
  /** Why it stopped without finishing, e.g. `turn_budget`, `token_budget`, `wall_time`, `model_error`. */
  readonly stopReason?: string;
  /** What went wrong, for a stop that is nobody's fault in the task (e.g. the model endpoint kept failing). */
  readonly stopDetail?: string;
  readonly promptTokens?: number;
  readonly completionTokens?: number;
  readonly costUsd?: number;
}

/** Anything that can attempt a task: the harness runtime around a model, or the oracle that runs the solution. */
export interface TrialAgent {
  /** The model name logged with each run, e.g. `oracle`, `sim:late-artifacts`, `openai:gpt-4.1-mini`. */
  readonly model: string;
  /** The harness version id logged with each run (none for the oracle). */
  readonly harnessVersion?: string;
  solve(context: TrialContext): Promise<TrialOutcome>;
}

// Models: the runtime speaks to every model through this one interface.

export interface ModelToolCall {
  readonly id: string;
  readonly name: string;
  /** Parsed arguments; absent when the model's text could not be parsed (then `argumentsText` holds it). */
  readonly arguments?: Record<string, unknown>;
  readonly argumentsText?: string;
}

export type ChatMessage =
  | { readonly role: 'system' | 'user'; readonly content: string }
  | { readonly role: 'assistant'; readonly content: string; readonly toolCalls?: readonly ModelToolCall[] }
  | { readonly role: 'tool'; readonly toolCallId: string; readonly content: string };

export interface ToolDefinition {
  readonly name: string;
  readonly description: string;
  /** JSON Schema of the arguments object. */
  readonly parameters: Record<string, unknown>;
}

export interface ModelRequest {
  readonly messages: readonly ChatMessage[];
  readonly tools: readonly ToolDefinition[];
  readonly signal?: AbortSignal;
}

export interface ModelResponse {
  readonly content: string;
  readonly reasoning?: string;
  readonly toolCalls: readonly ModelToolCall[];
  readonly promptTokens?: number;
  readonly completionTokens?: number;
  readonly costUsd?: number;
}

export interface ChatModel {
  readonly name: string;
  complete(request: ModelRequest): Promise<ModelResponse>;
}

/** Builds the model for one trial: a simulated model needs the task and the seed, a real one ignores them. */
export type ModelFactory = (trial: { readonly task: TaskSpec; readonly seed: number }) => ChatModel;
