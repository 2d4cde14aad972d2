import { TraceEvent } from '../../core/index.js';
import {
  type ChatModel,
  createMiddleware,
  defaultHarnessSpec,
  type HarnessSpec,
  parseHarnessSpec,
  runHarness,
  type TaskSpec,
  type TrialOutcome,
  type Workspace,
} from '../../harness/index.js';
import { createLocalWorkspace } from '../support/local-workspace.js';

export interface TrialRun {
  outcome: TrialOutcome;
  events: TraceEvent[];
  workspace: Workspace;
}

/** A spec from the default with some fields changed (validated, so defaults fill in). */
export function specWith(changes: Partial<Record<keyof HarnessSpec, unknown>>): HarnessSpec {
  return parseHarnessSpec({ ...defaultHarnessSpec, ...changes });
}

export function taskFor(instruction: string, extra: Partial<TaskSpec> = {}): TaskSpec {
  return { id: 'unit-task', directory: '/nonexistent', instruction, agentTimeoutSec: 60, ...extra };
}

/**
 * Runs one trial with a model over a real temporary workspace. Every emitted event is checked against the log's
 * schema, as the log would on append.
 */
export async function runTrial(options: {
  model: ChatModel;
  spec?: HarnessSpec;
  task?: TaskSpec;
  workspace?: Workspace;
  files?: Record<string, string>;
  signal?: AbortSignal;
}): Promise<TrialRun> {
  const spec = options.spec ?? defaultHarnessSpec;
  const workspace = options.workspace ?? createLocalWorkspace(options.files);
  const events: TraceEvent[] = [];
  const outcome = await runHarness({
    model: options.model,
    modelName: options.model.name,
    spec,
    middleware: createMiddleware(spec),
    context: {
      runId: 'trial-1',
      task: options.task ?? taskFor('Do the task.'),
      workspace,
      seed: 1,
      signal: options.signal ?? new AbortController().signal,
      emit: async (batch) => {
        for (const event of batch) events.push(TraceEvent.parse(event));
      },
    },
  });
  return { outcome, events, workspace };
}

/** The tool results of a run, in order. */
export function toolResults(events: readonly TraceEvent[]) {
  return events.flatMap((event) => (event.type === 'tool-result' ? [event.data] : []));
}

/** What the model was sent as the result of its latest tool call (or the latest user message). */
export function lastToolMessage(model: { requests: { messages: readonly { role: string; content: string }[] }[] }) {
  const messages = model.requests[model.requests.length - 1]?.messages ?? [];
  return [...messages].reverse().find((message) => message.role === 'tool' || message.role === 'user')?.content ?? '';
}
