import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import {
  describeSchemaError,
  type RunEnded,
  type RunStarted,
  type StepCreated,
  type ToolCalled,
  type ToolResulted,
} from '../core/index.js';
import { type Adapter, eventItem, type ParseItem, rejectItem, type SourceUnit } from './adapter.js';
import { firstInvalidUtf8Byte } from './json-text.js';

const FORMAT = 'atif';
const MAX_ID_LENGTH = 512;

/*
 * The ATIF fields this importer reads (spec v1.0–v1.7). Optional fields are `nullish` because Harbor's Python
 * producers write `null` for absent values. The root, each step, each tool call and each observation result are
 * parsed separately, so one bad item is rejected on its own and the rest of the trajectory still loads.
 */
const Extra = z.record(z.string(), z.unknown());

const ContentPart = z.object({
  type: z.string(),
  text: z.string().nullish(),
  source: z.object({ media_type: z.string().nullish(), path: z.string().nullish() }).nullish(),
});
const Content = z.union([z.string(), z.array(ContentPart)]);

const AtifTrajectory = z.object({
  schema_version: z.string().nullish(),
  session_id: z.string().nullish(),
  trajectory_id: z.string().nullish(),
  agent: z
    .object({
      name: z.string().nullish(),
      version: z.string().nullish(),
      model_name: z.string().nullish(),
      tool_definitions: z.array(z.unknown()).nullish(),
      extra: Extra.nullish(),
    })
    .nullish(),
  steps: z.array(z.unknown()),
  notes: z.string().nullish(),
  final_metrics: z
    .object({
      total_prompt_tokens: z.number().nullish(),
      total_completion_tokens: z.number().nullish(),
      total_cached_tokens: z.number().nullish(),
      total_cost_usd: z.number().nullish(),
      total_steps: z.number().nullish(),
      extra: Extra.nullish(),
    })
    .nullish(),
  continued_trajectory_ref: z.string().nullish(),
  extra: Extra.nullish(),
  subagent_trajectories: z.array(z.unknown()).nullish(),
});
type AtifTrajectory = z.infer<typeof AtifTrajectory>;

const AtifStep = z.object({
  step_id: z.number().int().nonnegative(),
  timestamp: z.string().nullish(),
  source: z.enum(['system', 'user', 'agent']),
  model_name: z.string().nullish(),
  reasoning_effort: z.union([z.string(), z.number()]).nullish(),
  message: Content.nullish(),
  reasoning_content: z.string().nullish(),
  tool_calls: z.array(z.unknown()).nullish(),
  observation: z.object({ results: z.array(z.unknown()) }).nullish(),
  metrics: z
    .object({
      prompt_tokens: z.number().nullish(),
      completion_tokens: z.number().nullish(),
      cached_tokens: z.number().nullish(),
      cost_usd: z.number().nullish(),
      extra: Extra.nullish(),
    })
    .nullish(),
  extra: Extra.nullish(),
  llm_call_count: z.number().int().nullish(),
  is_copied_context: z.boolean().nullish(),
});
type AtifStep = z.infer<typeof AtifStep>;

const AtifToolCall = z.object({
  tool_call_id: z.string().nullish(),
  function_name: z.string().min(1),
  arguments: z.unknown(),
  extra: Extra.nullish(),
});

const AtifSubagentReference = z.object({
  trajectory_id: z.string().nullish(),
  trajectory_path: z.string().nullish(),
  session_id: z.string().nullish(),
  extra: Extra.nullish(),
});

const AtifObservationResult = z.object({
  source_call_id: z.string().nullish(),
  content: Content.nullish(),
  subagent_trajectory_ref: z.array(AtifSubagentReference).nullish(),
  extra: Extra.nullish(),
});

type RunStartData = RunStarted['data'];
type Relation = NonNullable<RunStartData['relation']>;

/** What one trajectory is read as: which run, from which file, linked to which parent. */
export interface TrajectoryContext {
  /** The format named in each event's `source` (`atif`, or `harbor` when Harbor reads its trial's trajectory). */
  format: string;
  /** Absolute path of the file the trajectory was read from. */
  file: string;
  runId: string;
  /** JSON path of the trajectory inside its file: empty at the root, `subagent_trajectories[0]` when embedded. */
  position?: string;
  /** Run-start fields known from outside the trajectory (a Harbor `result.json`); they win over the trajectory's. */
  known?: { start?: Partial<RunStartData>; startedAt?: string };
  parent?: { runId: string; relation: Relation; step?: number };
  /** False when the caller ends the run itself, with a verdict the trajectory does not hold (Harbor). */
  endRun?: boolean;
  /** Turns a trajectory file reference into an existing absolute path, or undefined when there is none. */
  resolveReference?: (reference: string) => string | undefined;
}

/** Token and cost totals of a trajectory and its first and last step times, for the run's end. */
export interface TrajectoryTotals {
  promptTokens?: number;
  completionTokens?: number;
  costUsd?: number;
  startedAt?: string;
  endedAt?: string;
}

export interface TrajectoryEvents {
  items: ParseItem[];
  /** Trajectory files this one points at (continuations, sub-agents by path), each with the context to read it in. */
  references: { file: string; context: TrajectoryContext }[];
  /** Undefined when the trajectory was rejected as a whole and no run was started. */
  totals?: TrajectoryTotals;
}

/**
 * Turns one parsed ATIF trajectory into events: a run start, one step per ATIF step with its tool calls and their
 * results, the run's end (outcome `unknown`: a trajectory holds no verdict) unless `context.endRun` is false, and
 * a complete run for every embedded sub-agent trajectory. Pure: file references are resolved through
 * `context.resolveReference` and returned for the caller to read. Malformed items become rejects; the rest loads.
 */
export function trajectoryToEvents(value: unknown, context: TrajectoryContext): TrajectoryEvents {
  const { format, file, runId } = context;
  const prefix = context.position ? `${context.position}.` : '';
  const root = AtifTrajectory.safeParse(value);
  if (!root.success) {
    const where = context.position || '(root)';
    const found = Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value;
    const problem = isRecord(value)
      ? describeSchemaError(root.error)
      : `expected an object with "schema_version", "agent" and "steps", found ${found}`;
    const reason = `not an ATIF trajectory: ${problem}`;
    return { items: [rejectItem(format, file, where, reason, stringifyRaw(value))], references: [] };
  }
  const trajectory = root.data;
  const used = new Set<string>();
  const claim = (id: string) => claimId(used, id);
  const items: ParseItem[] = [];
  const references: TrajectoryEvents['references'] = [];
  const unresolved: { position: string; reference: string; reason: string }[] = [];
  const embedded = new Map<string, { index: number; parentStep?: number }>();
  (trajectory.subagent_trajectories ?? []).forEach((subagent, index) => {
    const id = readTrajectoryId(subagent);
    if (id !== undefined && !embedded.has(id)) embedded.set(id, { index });
  });
  const start = runStartData(trajectory, context);
  const childStart = { task: start.task, dataset: start.dataset, trialName: start.trialName };
  const child = (
    runIdOfChild: string,
    relation: Relation,
    step: number | undefined,
    childFile: string,
  ): TrajectoryContext => ({
    format,
    file: childFile,
    runId: runIdOfChild,
    known: { start: childStart },
    parent: { runId, relation, ...(step === undefined ? {} : { step }) },
    ...(context.resolveReference && childFile === file ? { resolveReference: context.resolveReference } : {}),
  });

  let first: string | undefined;
  let last: string | undefined;
  const summed = { promptTokens: 0, completionTokens: 0, costUsd: 0, seen: false };
  trajectory.steps.forEach((raw, index) => {
    const position = `${prefix}steps[${index}]`;
    const parsed = AtifStep.safeParse(raw);
    if (!parsed.success) {
      items.push(
        rejectItem(
          format,
          file,
          position,
          `step does not match ATIF: ${describeSchemaError(parsed.error)}`,
          stringifyRaw(raw),
        ),
      );
      return;
    }
    const step = parsed.data;
    const time = toIsoTime(step.timestamp);
    first ??= time;
    last = time ?? last;
    const metrics = step.metrics;
    if (metrics && !step.is_copied_context) {
      summed.promptTokens += toCount(metrics.prompt_tokens) ?? 0;
      summed.completionTokens += toCount(metrics.completion_tokens) ?? 0;
      summed.costUsd += toMoney(metrics.cost_usd) ?? 0;
      summed.seen = true;
    }
    const source = { format, file, position };
    const n = step.step_id;
    const stepEvent: StepCreated = {
      id: claim(`${runId}#step-${n}`),
      runId,
      type: 'step-create',
      time,
      source,
      data: {
        step: n,
        role: step.source,
        message: flattenContent(step.message),
        reasoning: step.reasoning_content ?? undefined,
        model: step.model_name ?? (step.source === 'agent' ? (trajectory.agent?.model_name ?? undefined) : undefined),
        promptTokens: toCount(metrics?.prompt_tokens),
        completionTokens: toCount(metrics?.completion_tokens),
        cachedTokens: toCount(metrics?.cached_tokens),
        costUsd: toMoney(metrics?.cost_usd),
        copiedContext: step.is_copied_context ?? undefined,
        extra: stepExtra(step),
      },
    };
    items.push(eventItem(stepEvent));

    const callIds: string[] = [];
    (step.tool_calls ?? []).forEach((rawCall, callIndex) => {
      const callPosition = `${position}.tool_calls[${callIndex}]`;
      const call = AtifToolCall.safeParse(rawCall);
      if (!call.success) {
        const reason = `tool call does not match ATIF: ${describeSchemaError(call.error)}`;
        items.push(rejectItem(format, file, callPosition, reason, stringifyRaw(rawCall)));
        return;
      }
      const callId = call.data.tool_call_id || `${n}-${callIndex}`;
      const argumentsObject = toArguments(call.data.arguments);
      const command = shellCommand(call.data.function_name, argumentsObject);
      callIds.push(callId);
      const callEvent: ToolCalled = {
        id: claim(`${runId}#call-${callId}`),
        runId,
        type: 'tool-call',
        time,
        source: { format, file, position: callPosition },
        data: { step: n, callId, tool: call.data.function_name, arguments: argumentsObject, command },
      };
      items.push(eventItem(callEvent));
    });

    const results = step.observation?.results ?? [];
    const linked = results.filter((result) => hasSourceCallId(result)).length;
    // Terminus-2 leaves `source_call_id` out; one call and one result in a step can only belong together.
    const inferredCallId = callIds.length === 1 && results.length === 1 && linked === 0 ? callIds[0] : undefined;
    results.forEach((rawResult, resultIndex) => {
      const resultPosition = `${position}.observation.results[${resultIndex}]`;
      const result = AtifObservationResult.safeParse(rawResult);
      if (!result.success) {
        const reason = `observation result does not match ATIF: ${describeSchemaError(result.error)}`;
        items.push(rejectItem(format, file, resultPosition, reason, stringifyRaw(rawResult)));
        return;
      }
      const refs = result.data.subagent_trajectory_ref ?? [];
      refs.forEach((ref, refIndex) => {
        const refPosition = `${resultPosition}.subagent_trajectory_ref[${refIndex}]`;
        const target = ref.trajectory_id ? embedded.get(ref.trajectory_id) : undefined;
        if (target) {
          target.parentStep ??= n;
          return;
        }
        const path = ref.trajectory_path;
        const resolved = path ? context.resolveReference?.(path) : undefined;
        if (path && resolved) {
          const childContext = child(childRunId(runId, path), 'subagent', n, resolved);
          if (ref.extra) childContext.known = { start: { ...childStart, metadata: { referenceExtra: ref.extra } } };
          references.push({ file: resolved, context: childContext });
          return;
        }
        unresolved.push({
          position: refPosition,
          reference: path ?? ref.trajectory_id ?? ref.session_id ?? '',
          reason: path
            ? 'file not found beside the trajectory'
            : 'no trajectory_path and no embedded trajectory with this trajectory_id',
        });
      });
      if (result.data.content == null && refs.length > 0) return;
      const callId = result.data.source_call_id ?? inferredCallId;
      const extra = result.data.extra ?? {};
      const resultEvent: ToolResulted = {
        id: claim(callId ? `${runId}#result-${callId}` : `${runId}#result-${n}-${resultIndex}`),
        runId,
        type: 'tool-result',
        time,
        source: { format, file, position: resultPosition },
        data: {
          step: n,
          callId,
          output: flattenContent(result.data.content),
          exitCode: firstInteger(extra.exit_code, extra.exitCode, extra.returncode),
          error: typeof extra.error === 'string' ? extra.error : undefined,
        },
      };
      items.push(eventItem(resultEvent));
    });
  });

  const continuation = trajectory.continued_trajectory_ref;
  if (continuation) {
    const resolved = context.resolveReference?.(continuation);
    if (resolved)
      references.push({
        file: resolved,
        context: child(childRunId(runId, continuation), 'continuation', undefined, resolved),
      });
    else
      unresolved.push({
        position: `${prefix}continued_trajectory_ref`,
        reference: continuation,
        reason: 'file not found beside the trajectory',
      });
  }

  const finals = trajectory.final_metrics;
  const totals: TrajectoryTotals = {
    promptTokens: toCount(finals?.total_prompt_tokens) ?? (summed.seen ? summed.promptTokens : undefined),
    completionTokens: toCount(finals?.total_completion_tokens) ?? (summed.seen ? summed.completionTokens : undefined),
    costUsd: toMoney(finals?.total_cost_usd) ?? (summed.seen ? summed.costUsd : undefined),
    startedAt: first,
    endedAt: last,
  };
  if (unresolved.length > 0) start.metadata = { ...start.metadata, unresolvedReferences: unresolved };
  const startEvent: RunStarted = {
    id: claim(`${runId}#start`),
    runId,
    type: 'run-start',
    time: context.known?.startedAt ?? first,
    source: { format, file, position: context.position || '(root)' },
    data: start,
  };
  items.unshift(eventItem(startEvent));
  if (context.endRun !== false) {
    const endEvent: RunEnded = {
      id: claim(`${runId}#end`),
      runId,
      type: 'run-end',
      time: last,
      source: { format, file, position: context.position || '(root)' },
      data: { outcome: 'unknown', ...totals },
    };
    items.push(eventItem(endEvent));
  }

  (trajectory.subagent_trajectories ?? []).forEach((subagent, index) => {
    const id = readTrajectoryId(subagent) ?? `subagent-${index}`;
    const parentStep = embedded.get(id)?.index === index ? embedded.get(id)?.parentStep : undefined;
    const nested = trajectoryToEvents(subagent, {
      ...child(childRunId(runId, id), 'subagent', parentStep, file),
      position: `${prefix}subagent_trajectories[${index}]`,
    });
    items.push(...nested.items);
    references.push(...nested.references);
  });
  return { items, references, totals };
}

/**
 * Reads a trajectory file and yields its events, then those of every trajectory file it references (continuations
 * and sub-agents by path, resolved beside it), each as its own run linked to its parent. Never throws for bad input:
 * an unreadable or invalid file becomes a reject. Returns the root trajectory's totals, or undefined when no run was
 * started from the file. Without `context.runId` the run id is `atif:<trajectory or session id>:<content hash>`,
 * since golden and exported trajectories often share one normalised session id.
 */
export async function* readTrajectoryFile(
  file: string,
  context: Omit<TrajectoryContext, 'file' | 'runId' | 'resolveReference'> & { runId?: string },
  visited: Set<string> = new Set(),
): AsyncGenerator<ParseItem | readonly ParseItem[], TrajectoryTotals | undefined> {
  const absolute = resolve(file);
  if (visited.has(absolute)) return undefined;
  const isRoot = visited.size === 0;
  visited.add(absolute);
  const read = await readJsonFile(context.format, absolute);
  if ('reject' in read) {
    yield read.reject;
    if (isRoot) yield rejectOrphans(context.format, absolute);
    return undefined;
  }
  const runId = context.runId ?? standaloneRunId(read.value, read.text, absolute);
  const events = trajectoryToEvents(read.value, {
    ...context,
    file: absolute,
    runId,
    resolveReference: (reference) => resolveTrajectoryReference(absolute, reference),
  });
  yield events.items;
  if (isRoot && events.totals === undefined) yield rejectOrphans(context.format, absolute);
  for (const reference of events.references) {
    yield* readTrajectoryFile(reference.file, reference.context, visited);
  }
  if (isRoot && events.totals !== undefined) yield rejectUnreferenced(context.format, absolute, visited);
  return events.totals;
}

/**
 * Standalone ATIF trajectory files: any JSON whose `schema_version` starts with "ATIF". A continuation or sub-agent
 * file with its parent trajectory beside it (`trajectory.cont-1.json` next to `trajectory.json`) is left to the
 * parent, which reads it as a linked run; claiming it too would import it twice under two run ids. Sub-agent and
 * continuation files referenced by path under other names are found through `linkedFiles`: the orchestrator leaves
 * out the units that another trajectory of the same import reads.
 */
export const atifAdapter: Adapter = {
  format: FORMAT,
  description: 'ATIF agent trajectories (Harbor, OpenHands, Terminus-2, ...): one .json file per trajectory',
  claimsFile(file, head) {
    if (!/\.json$/i.test(file)) return false;
    if (!/"schema_version"\s*:\s*"ATIF/.test(head)) return false;
    return !hasParentTrajectoryBeside(file);
  },
  async *parse(unit: SourceUnit): AsyncIterable<ParseItem | readonly ParseItem[]> {
    yield* readTrajectoryFile(unit.path, { format: FORMAT });
  },
  linkedFiles: linkedTrajectoryFiles,
};

/**
 * The trajectory files that reading `file` reads too, as `readTrajectoryFile` follows them: the continuations and
 * sub-agents it references by path (its own and those of its embedded sub-agents) that exist. Empty when the file
 * cannot be read as a trajectory, since its references are then not followed either. Most trajectories reference no
 * file, which a byte search finds without parsing.
 */
export async function linkedTrajectoryFiles(file: string): Promise<string[]> {
  const absolute = resolve(file);
  let bytes: Buffer;
  try {
    bytes = await readFile(absolute);
  } catch {
    return [];
  }
  if (bytes.indexOf('"trajectory_path"') === -1 && bytes.indexOf('"continued_trajectory_ref"') === -1) return [];
  const decoded = decodeUtf8(bytes);
  if (!('text' in decoded)) return [];
  try {
    const events = trajectoryToEvents(JSON.parse(decoded.text), {
      format: FORMAT,
      file: absolute,
      runId: FORMAT,
      resolveReference: (reference) => resolveTrajectoryReference(absolute, reference),
    });
    return events.references.map((reference) => reference.file);
  } catch {
    // Nested too deeply to parse: the import rejects the file, and follows none of its references.
    return [];
  }
}

/** Reads and parses a JSON file; an unreadable file, bytes that are no UTF-8 or invalid JSON become a reject a user can act on. */
export async function readJsonFile(
  format: string,
  file: string,
): Promise<{ value: unknown; text: string } | { reject: ParseItem }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    const reason = `cannot read the file: ${(error as Error).message}`;
    return { reject: rejectItem(format, file, '(file)', reason, '') };
  }
  const decoded = decodeUtf8(bytes);
  if (!('text' in decoded)) {
    return { reject: rejectItem(format, file, decoded.position, decoded.reason, bytes.toString('utf8')) };
  }
  const text = decoded.text;
  try {
    return { value: JSON.parse(text), text };
  } catch (error) {
    const message = (error as Error).message;
    const offset = Number(/at position (\d+)/.exec(message)?.[1] ?? Number.NaN);
    const content = text.trimEnd();
    const truncated = /end of JSON input/.test(message) || (Number.isFinite(offset) && offset >= content.length);
    const position = truncated || !Number.isFinite(offset) ? 'end of file' : lineAndColumn(text, offset);
    const reason = truncated
      ? `truncated JSON: the file ends before the document does (${message}); copy or export it again`
      : `invalid JSON: ${message}`;
    return { reject: rejectItem(format, file, position, reason, text) };
  }
}

/**
 * Decodes a file's bytes as UTF-8, which JSON requires. Bytes that are no UTF-8 mean the file was damaged or written in
 * another encoding; decoding them leniently would load replacement characters in place of the source's text, so the
 * file is refused instead, naming the first bad byte.
 */
export function decodeUtf8(bytes: Buffer): { text: string } | { position: string; reason: string } {
  if (isUtf8(bytes)) return { text: bytes.toString('utf8') };
  const offset = firstInvalidUtf8Byte(bytes);
  const position = lineAndColumn(bytes.subarray(0, offset).toString('utf8'), Number.POSITIVE_INFINITY);
  const hex = (bytes[offset] ?? 0).toString(16).toUpperCase().padStart(2, '0');
  return {
    position,
    reason: `not valid UTF-8: byte 0x${hex} at byte offset ${offset} is no part of a UTF-8 character; save or export the file as UTF-8 and import it again`,
  };
}

/**
 * The JSON text of a rejected value, kept as the reject's raw text. A value nested too deeply to serialise (thousands
 * of levels) is described instead: the reject must still be kept, and the orchestrator must not crash on it.
 */
export function stringifyRaw(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch (error) {
    return `(value not shown: ${(error as Error).message})`;
  }
}

/**
 * Normalises a source time to what the event schema accepts: ISO 8601 as written when it already is, otherwise the
 * instant re-written in UTC, or undefined when the value is no time at all.
 */
export function toIsoTime(value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  if (IsoTime.safeParse(value).success) return value;
  const parsed = new Date(value);
  return Number.isNaN(parsed.getTime()) ? undefined : parsed.toISOString();
}

/** A token count as the schema wants it (a non-negative integer), or undefined. */
export function toCount(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
}

/** An amount of money as the schema wants it (a non-negative finite number), or undefined. */
export function toMoney(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

const IsoTime = z.iso.datetime({ offset: true, local: true });

function runStartData(trajectory: AtifTrajectory, context: TrajectoryContext): RunStartData {
  const agent = trajectory.agent;
  const finals = trajectory.final_metrics;
  const firstModel = trajectory.steps
    .map((step) => (isRecord(step) && typeof step.model_name === 'string' ? step.model_name : undefined))
    .find((model) => model !== undefined);
  const toolNames = (agent?.tool_definitions ?? [])
    .map((definition) => (isRecord(definition) && isRecord(definition.function) ? definition.function.name : undefined))
    .filter((name): name is string => typeof name === 'string');
  const metadata = definedOnly({
    schemaVersion: trajectory.schema_version,
    sessionId: trajectory.session_id,
    trajectoryId: trajectory.trajectory_id,
    notes: trajectory.notes,
    agentExtra: agent?.extra,
    extra: trajectory.extra,
    toolNames: toolNames.length > 0 ? toolNames : undefined,
    continuedTrajectoryRef: trajectory.continued_trajectory_ref,
    cachedTokens: toCount(finals?.total_cached_tokens),
    totalSteps: toCount(finals?.total_steps),
    finalMetricsExtra: finals?.extra,
    parentStep: context.parent?.step,
  });
  const extraTask = trajectory.extra?.task_name ?? trajectory.extra?.task;
  const fromTrajectory: RunStartData = {
    task: typeof extraTask === 'string' && extraTask !== '' ? extraTask : taskFromFile(context.file),
    model: agent?.model_name ?? firstModel,
    agent: agent?.name ?? undefined,
    agentVersion: agent?.version ?? undefined,
    parentRunId: context.parent?.runId,
    relation: context.parent?.relation,
  };
  const known = context.known?.start ?? {};
  const merged: RunStartData = { ...fromTrajectory, ...definedOnly(known) };
  const allMetadata = { ...metadata, ...known.metadata };
  if (Object.keys(allMetadata).length > 0) merged.metadata = allMetadata;
  return merged;
}

function stepExtra(step: AtifStep): Record<string, unknown> | undefined {
  const extra: Record<string, unknown> = definedOnly({
    ...step.extra,
    reasoning_effort: step.reasoning_effort ?? undefined,
    llm_call_count: step.llm_call_count ?? undefined,
    metrics_extra: step.metrics?.extra ?? undefined,
  });
  // Tool calls and results have no `extra` of their own in the event schema: keep theirs on the step, keyed by call.
  const callExtras = Object.fromEntries(
    (step.tool_calls ?? []).flatMap((call, index) => {
      const parsed = AtifToolCall.safeParse(call);
      return parsed.success && parsed.data.extra
        ? [[parsed.data.tool_call_id || String(index), parsed.data.extra]]
        : [];
    }),
  );
  const resultExtras = Object.fromEntries(
    (step.observation?.results ?? []).flatMap((result, index) => {
      const parsed = AtifObservationResult.safeParse(result);
      return parsed.success && parsed.data.extra
        ? [[parsed.data.source_call_id || String(index), parsed.data.extra]]
        : [];
    }),
  );
  if (Object.keys(callExtras).length > 0) extra.tool_call_extra = callExtras;
  if (Object.keys(resultExtras).length > 0) extra.observation_extra = resultExtras;
  return Object.keys(extra).length > 0 ? extra : undefined;
}

/** Text of a message or observation: a string as is, multimodal parts joined with images named by their path. */
function flattenContent(content: z.infer<typeof Content> | null | undefined): string {
  if (content == null) return '';
  if (typeof content === 'string') return content;
  return content
    .map((part) => {
      if (part.type === 'text') return part.text ?? '';
      if (part.type === 'image')
        return `[image: ${part.source?.path ?? 'unknown'}${part.source?.media_type ? ` (${part.source.media_type})` : ''}]`;
      return `[${part.type}]`;
    })
    .join('\n');
}

function toArguments(value: unknown): Record<string, unknown> {
  if (isRecord(value)) return value;
  if (typeof value === 'string') {
    try {
      const parsed: unknown = JSON.parse(value);
      if (isRecord(parsed)) return parsed;
    } catch {
      // Not JSON: kept as the raw text below.
    }
    return { input: value };
  }
  return value == null ? {} : { input: value };
}

const SHELL_TOOL = /bash|shell|terminal|exec|command|cmd|run/i;

/**
 * The shell text a call runs: a terminal's `keystrokes` (trailing newlines dropped, as the key press that sends
 * them), or the `command`/`cmd` of a shell-like tool. An editor's `command: "create"` is no shell command.
 */
function shellCommand(tool: string, args: Record<string, unknown>): string | undefined {
  if (typeof args.keystrokes === 'string') return args.keystrokes.replace(/\n+$/, '');
  if (!SHELL_TOOL.test(tool)) return undefined;
  const command = args.command ?? args.cmd;
  if (typeof command === 'string') return command;
  if (Array.isArray(command) && command.every((part) => typeof part === 'string')) return command.join(' ');
  return undefined;
}

function hasSourceCallId(result: unknown): boolean {
  return isRecord(result) && typeof result.source_call_id === 'string' && result.source_call_id !== '';
}

function readTrajectoryId(value: unknown): string | undefined {
  return isRecord(value) && typeof value.trajectory_id === 'string' && value.trajectory_id !== ''
    ? value.trajectory_id
    : undefined;
}

function standaloneRunId(value: unknown, text: string, file: string): string {
  const name = isRecord(value)
    ? [value.trajectory_id, value.session_id].find((id): id is string => typeof id === 'string' && id !== '')
    : undefined;
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 12);
  return boundedId(`${FORMAT}:${name ?? taskFromFile(file)}:${hash}`);
}

/** A child run's id: its parent's, then the reference as written (a path or an embedded trajectory id). */
function childRunId(parentRunId: string, reference: string): string {
  return boundedId(`${parentRunId}/${reference}`);
}

function boundedId(id: string): string {
  // Event ids append up to ~100 characters (`#result-<call id>`) to the run id; keep room for them.
  const limit = MAX_ID_LENGTH - 128;
  if (id.length <= limit) return id;
  return `${id.slice(0, limit - 17)}~${createHash('sha256').update(id).digest('hex').slice(0, 16)}`;
}

function claimId(used: Set<string>, id: string): string {
  let candidate = id;
  for (let copy = 2; used.has(candidate); copy++) candidate = `${id}~${copy}`;
  used.add(candidate);
  return candidate;
}

/** `hello-world.trajectory.json` → `hello-world`; a bare `trajectory.json` is named after its folder. */
function taskFromFile(file: string): string {
  const name = basename(file)
    .replace(/\.json$/i, '')
    .replace(/\.?trajectory$/i, '');
  return name !== '' ? name : basename(dirname(file)) || 'unknown';
}

/**
 * Resolves a reference written in a trajectory, relative to that trajectory's folder. Harbor's golden files carry
 * their test's name as a prefix (`x.trajectory.json` refers to `trajectory.cont-1.json`, stored as
 * `x.trajectory.cont-1.json`), so that sibling is tried second.
 */
function resolveTrajectoryReference(file: string, reference: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(reference) && !reference.startsWith('file://')) return undefined;
  const path = reference.replace(/^file:\/\//, '');
  const folder = dirname(file);
  const candidates = [isAbsolute(path) ? path : join(folder, path)];
  const prefix = /^(.*\.)trajectory\.json$/i.exec(basename(file))?.[1];
  if (prefix && !isAbsolute(path)) candidates.push(join(folder, `${prefix}${basename(path)}`));
  return candidates.find(isFile);
}

/**
 * Continuation files beside a trajectory (`trajectory.cont-1.json`) are read through it alone; when it is rejected
 * they would vanish without a word, so each gets a reject that says why it was not read.
 */
function rejectOrphans(format: string, file: string): ParseItem[] {
  const reason = `not read: it continues ${basename(file)}, which was rejected; fix that file and import again`;
  return linkedNamesBeside(file).map((linked) => rejectItem(format, linked, '(file)', reason, ''));
}

/**
 * The files named as linked to a read trajectory (`trajectory.cont-1.json` beside `trajectory.json`) that it never
 * referenced, so nothing read them: the standalone ATIF adapter leaves such files to their parent, so each is rejected
 * by name rather than vanishing.
 */
function rejectUnreferenced(format: string, file: string, visited: ReadonlySet<string>): ParseItem[] {
  const reason = `not read: its name makes it a continuation or sub-agent of ${basename(file)}, which does not reference it; add the reference (continued_trajectory_ref or a sub-agent's trajectory_path) or import the file on its own under another name`;
  return linkedNamesBeside(file)
    .filter((linked) => !visited.has(linked))
    .map((linked) => rejectItem(format, linked, '(file)', reason, readTextOrEmpty(linked)));
}

function readTextOrEmpty(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** The files beside a `[prefix.]trajectory.json` whose names mark them as its continuations or sub-agents, sorted. */
function linkedNamesBeside(file: string): string[] {
  const prefix = /^(|.*\.)trajectory\.json$/i.exec(basename(file))?.[1];
  if (prefix === undefined) return [];
  const folder = dirname(file);
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch {
    return [];
  }
  return names
    .filter((name) => name.toLowerCase().startsWith(`${prefix}trajectory.`.toLowerCase()) && /\.json$/i.test(name))
    .filter((name) => name !== basename(file) && isFile(join(folder, name)))
    .sort()
    .map((name) => join(folder, name));
}

function hasParentTrajectoryBeside(file: string): boolean {
  const match = /^(|.*\.)trajectory\..+\.json$/i.exec(basename(file));
  return match !== null && isFile(join(dirname(file), `${match[1]}trajectory.json`));
}

function isFile(path: string): boolean {
  return existsSync(path) && statSync(path).isFile();
}

/** `line L column C` of a character offset; an infinite offset means the end of the text. */
function lineAndColumn(text: string, offset: number): string {
  const before = Number.isFinite(offset) ? text.slice(0, offset) : text;
  const line = before.split('\n').length;
  return `line ${line} column ${before.length - before.lastIndexOf('\n')}`;
}

function firstInteger(...values: unknown[]): number | undefined {
  return values.find((value): value is number => typeof value === 'number' && Number.isInteger(value));
}

function definedOnly<T extends Record<string, unknown>>(record: T): { [K in keyof T]: Exclude<T[K], null> } {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined && value !== null)) as {
    [K in keyof T]: Exclude<T[K], null>;
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
