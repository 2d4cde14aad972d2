import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { describeSchemaError, Outcome } from '../core/index.js';
import { type Adapter, eventItem, type ParseItem, rejectItem, type SourceUnit } from './adapter.js';
import { decodeUtf8, stringifyRaw } from './atif.js';
import { parseJson, parseJsonLine } from './json-text.js';
import { readLines } from './lines.js';

const FORMAT = 'otel';
const OTLP_FILE = /\.(json|jsonl|ndjson)$/i;
const LINE_FILE = /\.(jsonl|ndjson)$/i;
const HEAD_BYTES = 4096;
/** Attribute values nested deeper than this are no telemetry anyone wrote on purpose; the span is rejected. */
const MAX_ATTRIBUTE_DEPTH = 64;

/**
 * OpenTelemetry traces exported as OTLP/JSON, read with the GenAI semantic conventions (`gen_ai.*`) and OpenInference
 * (`openinference.span.kind`, `llm.*`, `tool.*`).
 *
 * - A trace is a run, `otel:<traceId>`. Its root span (no parent) gives `run-start` and `run-end`.
 * - Chat / LLM spans become agent steps, numbered 1… by start time within what was read together.
 * - Tool spans (`execute_tool`, `TOOL`) become a `tool-call` and its `tool-result`; a span with status ERROR gives the
 *   result an `error`. Tool calls a model requested but no tool span executed become calls without a result.
 * - Outcome: `selfharness.outcome` (passed | failed | invalid | unknown) on the root span, else on any span of the
 *   trace; else `selfharness.reward` (≥ 1 passed, below failed); else `unknown`. `selfharness.failure_reason`,
 *   `selfharness.task` and `selfharness.dataset` name the rest; without a task attribute the root span's name is
 *   the task.
 *
 * Event ids carry span ids (`#step-<spanId>`, `#call-<callId>`), not step numbers, because a trace may arrive in
 * several exports: ids stay unique and a re-import adds nothing however the spans were split.
 */
export const otelAdapter: Adapter = {
  format: FORMAT,
  description: 'OpenTelemetry OTLP/JSON traces (GenAI / OpenInference): .json, or .jsonl/.ndjson one export a line',
  claimsFile(file, head) {
    return isOtlpHead(file, head);
  },
  /** A folder of OTLP exports only is read as one unit, so a trace split across its files is put together. */
  claimsDirectory(directory, entries) {
    const visible = entries.filter((entry) => !entry.startsWith('.'));
    if (visible.length < 2) return false;
    return visible.every((entry) => {
      const path = join(directory, entry);
      return OTLP_FILE.test(entry) && isFile(path) && isOtlpHead(path, readHead(path));
    });
  },
  parse(unit: SourceUnit): AsyncIterable<ParseItem> {
    return parseUnit(unit);
  },
};

/**
 * Converts one OTLP/JSON trace export (an HTTP request body, one line of a file) into events and rejects. Pure: what
 * it returns depends only on its arguments. A trace whose root span is not in this document gets its steps and tool
 * calls but no `run-start`/`run-end`; those come with the export that holds the root span. Step numbers count the
 * chat spans of this document only, so a trace sent in several exports numbers each part from 1; its event ids,
 * built from span ids, stay distinct.
 */
export function parseOtlpTraces(document: unknown, file: string): ParseItem[] {
  const collected: Collected = { spans: [], rejects: [] };
  collectSpans(document, file, '', collected);
  return [...collected.rejects, ...convertSpans(collected.spans, { promoteOrphans: false })];
}

interface Span {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  start: bigint;
  end?: bigint;
  attributes: Record<string, unknown>;
  resource: Record<string, unknown>;
  isError: boolean;
  statusMessage?: string;
  events: { name: string; attributes: Record<string, unknown> }[];
  file: string;
  position: string;
}

interface Collected {
  spans: Span[];
  rejects: ParseItem[];
}

type SpanRole = 'agent' | 'llm' | 'tool' | 'other';

const nanos = z.union([z.string().regex(/^\d+$/), z.number().int().nonnegative()]).transform((value) => BigInt(value));
const KeyValues = z.array(z.object({ key: z.string(), value: z.unknown() })).optional();
const OtlpSpan = z.object({
  traceId: z.string().min(1),
  spanId: z.string().min(1),
  parentSpanId: z.string().optional(),
  name: z.string(),
  startTimeUnixNano: nanos,
  endTimeUnixNano: nanos.optional(),
  attributes: KeyValues,
  events: z.array(z.object({ name: z.string().optional(), attributes: KeyValues })).optional(),
  status: z.object({ code: z.union([z.number(), z.string()]).optional(), message: z.string().optional() }).optional(),
});
const ResourceSpans = z.object({
  resource: z.object({ attributes: KeyValues }).optional(),
  scopeSpans: z.array(z.object({ spans: z.array(z.unknown()).optional() })).optional(),
  /** The name before OTLP 0.19. */
  instrumentationLibrarySpans: z.array(z.object({ spans: z.array(z.unknown()).optional() })).optional(),
});
const ExportTraceServiceRequest = z.object({ resourceSpans: z.array(z.unknown()) });

async function* parseUnit(unit: SourceUnit): AsyncGenerator<ParseItem> {
  const collected: Collected = { spans: [], rejects: [] };
  const files = unit.isDirectory
    ? (await readdir(unit.path))
        .filter((entry) => OTLP_FILE.test(entry) && !entry.startsWith('.'))
        .sort()
        .map((entry) => join(unit.path, entry))
    : [unit.path];
  for (const file of files) {
    if (LINE_FILE.test(file)) await collectLineFile(file, collected);
    else await collectJsonFile(file, collected);
  }
  yield* collected.rejects;
  // A file holds everything it will ever hold: a trace without its root span still becomes a run.
  yield* convertSpans(collected.spans, { promoteOrphans: true });
}

async function collectJsonFile(file: string, collected: Collected): Promise<void> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    collected.rejects.push(rejectItem(FORMAT, file, 'file', `cannot read the export: ${(error as Error).message}`, ''));
    return;
  }
  const decoded = decodeUtf8(bytes);
  if (!('text' in decoded)) {
    collected.rejects.push(rejectItem(FORMAT, file, decoded.position, decoded.reason, bytes.toString('utf8')));
    return;
  }
  const text = decoded.text;
  const parsed = parseJson(text);
  if (!parsed.ok) {
    collected.rejects.push(rejectItem(FORMAT, file, parsed.position, `invalid OTLP JSON: ${parsed.reason}`, text));
    return;
  }
  collectSpans(parsed.value, file, '', collected);
}

async function collectLineFile(file: string, collected: Collected): Promise<void> {
  try {
    for await (const line of readLines(file)) {
      if (line.text.trim() === '') continue;
      const parsed = parseJsonLine(line, 'export');
      if (!parsed.ok) {
        collected.rejects.push(rejectItem(FORMAT, file, `line ${line.number}`, parsed.reason, line.text));
        continue;
      }
      collectSpans(parsed.value, file, `line ${line.number}: `, collected);
    }
  } catch (error) {
    collected.rejects.push(rejectItem(FORMAT, file, 'file', `cannot read the export: ${(error as Error).message}`, ''));
  }
}

/** Validates one export document span by span: a malformed span is rejected, its neighbours still load. */
function collectSpans(document: unknown, file: string, prefix: string, collected: Collected): void {
  const request = ExportTraceServiceRequest.safeParse(document);
  if (!request.success) {
    const reason = 'not an OTLP/JSON trace export: expected {"resourceSpans": [...]}';
    collected.rejects.push(rejectItem(FORMAT, file, `${prefix}$`, reason, stringifyRaw(document)));
    return;
  }
  for (const [r, value] of request.data.resourceSpans.entries()) {
    const resourcePosition = `${prefix}resourceSpans[${r}]`;
    const resourceSpans = ResourceSpans.safeParse(value);
    if (!resourceSpans.success) {
      const reason = `malformed resourceSpans entry: ${describeSchemaError(resourceSpans.error)}`;
      collected.rejects.push(rejectItem(FORMAT, file, resourcePosition, reason, stringifyRaw(value)));
      continue;
    }
    const resource = tryDecodeAttributes(resourceSpans.data.resource?.attributes);
    if (!('attributes' in resource)) {
      collected.rejects.push(rejectItem(FORMAT, file, resourcePosition, resource.reason, stringifyRaw(value)));
      continue;
    }
    const scopeKey = resourceSpans.data.scopeSpans ? 'scopeSpans' : 'instrumentationLibrarySpans';
    const scopes = resourceSpans.data.scopeSpans ?? resourceSpans.data.instrumentationLibrarySpans ?? [];
    for (const [s, scope] of scopes.entries()) {
      for (const [k, spanValue] of (scope.spans ?? []).entries()) {
        const position = `${resourcePosition}.${scopeKey}[${s}].spans[${k}]`;
        const span = OtlpSpan.safeParse(spanValue);
        if (!span.success) {
          const reason = `malformed span: ${describeSchemaError(span.error)}`;
          collected.rejects.push(rejectItem(FORMAT, file, position, reason, stringifyRaw(spanValue)));
          continue;
        }
        const attributes = tryDecodeAttributes(span.data.attributes);
        const events = (span.data.events ?? []).map((event) => ({
          name: event.name ?? '',
          attributes: tryDecodeAttributes(event.attributes),
        }));
        const tooDeep = [attributes, ...events.map((event) => event.attributes)].find(
          (list) => !('attributes' in list),
        );
        if (tooDeep && 'reason' in tooDeep) {
          collected.rejects.push(rejectItem(FORMAT, file, position, tooDeep.reason, stringifyRaw(spanValue)));
          continue;
        }
        const unreadableKind = unreadableSpanKind(decodedAttributes(attributes));
        if (unreadableKind) {
          collected.rejects.push(rejectItem(FORMAT, file, position, unreadableKind, stringifyRaw(spanValue)));
          continue;
        }
        const { status } = span.data;
        collected.spans.push({
          traceId: span.data.traceId,
          spanId: span.data.spanId,
          parentSpanId: span.data.parentSpanId || undefined,
          name: span.data.name,
          start: span.data.startTimeUnixNano,
          end: span.data.endTimeUnixNano,
          attributes: decodedAttributes(attributes),
          resource: resource.attributes,
          isError: status?.code === 2 || status?.code === 'STATUS_CODE_ERROR',
          statusMessage: status?.message || undefined,
          events: events.map((event) => ({ name: event.name, attributes: decodedAttributes(event.attributes) })),
          file,
          position,
        });
      }
    }
  }
}

/** One tool call a model asked for in its output messages. */
interface RequestedCall {
  id?: string;
  name: string;
  arguments: Record<string, unknown>;
}

interface Step {
  span: Span;
  step: number;
  requested: RequestedCall[];
}

/** Turns the spans read together into events, trace by trace, in start-time order. */
function convertSpans(spans: readonly Span[], options: { promoteOrphans: boolean }): ParseItem[] {
  const traces = new Map<string, Span[]>();
  const seen = new Set<string>();
  for (const span of [...spans].sort(compareSpans)) {
    // The same span exported twice (a retried batch) is read once.
    const key = `${span.traceId}/${span.spanId}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const trace = traces.get(span.traceId) ?? [];
    trace.push(span);
    traces.set(span.traceId, trace);
  }
  const items: ParseItem[] = [];
  for (const [traceId, trace] of traces) items.push(...convertTrace(traceId, trace, options));
  return items;
}

function convertTrace(traceId: string, spans: readonly Span[], options: { promoteOrphans: boolean }): ParseItem[] {
  const runId = `${FORMAT}:${traceId}`;
  const byId = new Map(spans.map((span) => [span.spanId, span]));
  const root =
    spans.find((span) => span.parentSpanId === undefined) ??
    (options.promoteOrphans ? spans.find((span) => !byId.has(span.parentSpanId ?? '')) : undefined);

  const steps: Step[] = [];
  for (const span of spans) {
    if (classifySpan(span) === 'llm') steps.push({ span, step: steps.length + 1, requested: readRequestedCalls(span) });
  }
  // Tool spans first, so that each step knows which of its requested calls no tool span executed.
  const usedCallIds = new Set<string>();
  const matched = new Set<RequestedCall>();
  const toolCalls = new Map<Span, { step: number; callId: string }>();
  for (const span of spans) {
    if (classifySpan(span) !== 'tool') continue;
    const issuer = findIssuingStep(span, toolName(span), steps, matched);
    const ownId = asText(span.attributes['gen_ai.tool.call.id']) ?? asText(span.attributes['tool_call.id']);
    let callId = ownId ?? issuer?.call?.id ?? span.spanId;
    if (usedCallIds.has(callId)) callId = `${callId}@${span.spanId}`;
    usedCallIds.add(callId);
    toolCalls.set(span, { step: issuer?.step ?? 0, callId });
  }

  const body: ParseItem[] = [];
  const stepsBySpan = new Map(steps.map((step) => [step.span, step]));
  for (const span of spans) {
    const step = stepsBySpan.get(span);
    const toolCall = toolCalls.get(span);
    if (step) {
      body.push(stepEvent(runId, step, agentName(span, byId)));
      // Calls the model requested that no tool span in view executed: kept, without a result.
      for (const [index, call] of step.requested.entries()) {
        if (matched.has(call)) continue;
        let callId = call.id ?? `${span.spanId}.${index}`;
        if (usedCallIds.has(callId)) callId = `${callId}@${span.spanId}`;
        usedCallIds.add(callId);
        body.push(requestedCallEvent(runId, step, call, callId));
      }
    } else if (toolCall) {
      body.push(...toolEvents(runId, span, toolCall.step, toolCall.callId));
    }
  }
  if (!root) return body;
  return [runStartEvent(runId, root, spans, steps), ...body, ...runEndEvents(runId, root, spans)];
}

function runStartEvent(runId: string, root: Span, spans: readonly Span[], steps: readonly Step[]): ParseItem {
  const attributes = root.attributes;
  const firstLlm = steps[0]?.span.attributes ?? {};
  const metadata: Record<string, unknown> = { traceId: root.traceId, rootSpanId: root.spanId, rootSpanName: root.name };
  const conversation = asText(attributes['gen_ai.conversation.id']) ?? asText(attributes['session.id']);
  if (conversation) metadata.conversationId = conversation;
  const service = asText(root.resource['service.name']);
  if (service) metadata.serviceName = service;
  return eventItem({
    id: `${runId}#start`,
    runId,
    type: 'run-start',
    time: isoTime(root.start),
    source: sourceOf(root),
    data: {
      task: findAttribute(root, spans, 'selfharness.task') ?? asText(root.name) ?? root.traceId,
      dataset: findAttribute(root, spans, 'selfharness.dataset'),
      model: requestedModel(attributes) ?? requestedModel(firstLlm),
      agent:
        asText(attributes['gen_ai.agent.name']) ??
        asText(attributes['agent.name']) ??
        (classifySpan(root) === 'agent' ? asText(root.name.replace(/^invoke_agent\s*/, '')) : undefined) ??
        service,
      agentVersion: asText(attributes['gen_ai.agent.version']) ?? asText(root.resource['service.version']),
      instruction: firstUserText(attributes) ?? asText(attributes['input.value']) ?? firstUserText(firstLlm),
      metadata,
    },
  });
}

function runEndEvents(runId: string, root: Span, spans: readonly Span[]): ParseItem[] {
  const verdict = decideOutcome(root, spans);
  const errorReason = root.isError
    ? (asText(root.attributes['error.type']) ?? root.statusMessage ?? exceptionMessage(root) ?? 'error')
    : undefined;
  const end = eventItem({
    id: `${runId}#end`,
    runId,
    type: 'run-end',
    time: isoTime(root.end ?? root.start),
    source: sourceOf(root),
    data: {
      outcome: verdict.outcome,
      reward: verdict.reward,
      failureReason: findAttribute(root, spans, 'selfharness.failure_reason') ?? errorReason,
      promptTokens: promptTokens(root.attributes),
      completionTokens: completionTokens(root.attributes),
      startedAt: isoTime(root.start),
      endedAt: root.end === undefined ? undefined : isoTime(root.end),
    },
  });
  if (verdict.unrecognised === undefined) return [end];
  const reason = `selfharness.outcome must be one of ${Outcome.options.join(', ')}, got "${verdict.unrecognised}"; the run is loaded with outcome ${verdict.outcome}`;
  return [rejectItem(FORMAT, root.file, root.position, reason, verdict.unrecognised), end];
}

/**
 * The run's verdict: `selfharness.outcome` when it names an outcome, else `selfharness.reward` (≥ 1 passed, below
 * failed), else `unknown`. An outcome value that names none is returned as `unrecognised`, for a reject.
 */
function decideOutcome(
  root: Span,
  spans: readonly Span[],
): { outcome: Outcome; reward?: number; unrecognised?: string } {
  const declared = findAttribute(root, spans, 'selfharness.outcome');
  const reward = findNumber(root, spans, 'selfharness.reward');
  const outcome = Outcome.safeParse(declared);
  if (outcome.success) return { outcome: outcome.data, reward };
  const fromReward: Outcome = reward === undefined ? 'unknown' : reward >= 1 ? 'passed' : 'failed';
  return { outcome: fromReward, reward, unrecognised: declared };
}

function stepEvent(runId: string, step: Step, agent: string | undefined): ParseItem {
  const { span } = step;
  const attributes = span.attributes;
  const output = readOutputText(attributes);
  const extra: Record<string, unknown> = { spanId: span.spanId, spanName: span.name };
  if (agent) extra.agent = agent;
  const finishReasons = attributes['gen_ai.response.finish_reasons'];
  if (Array.isArray(finishReasons)) extra.finishReasons = finishReasons;
  if (span.isError) extra.error = span.statusMessage ?? exceptionMessage(span) ?? 'error';
  if (step.requested.length > 0) extra.toolCalls = step.requested.map((call) => call.id ?? call.name);
  return eventItem({
    id: `${runId}#step-${span.spanId}`,
    runId,
    type: 'step-create',
    time: isoTime(span.start),
    source: sourceOf(span),
    data: {
      step: step.step,
      role: 'agent',
      message: output.message,
      reasoning: output.reasoning,
      model: asText(attributes['gen_ai.response.model']) ?? requestedModel(attributes),
      promptTokens: promptTokens(attributes),
      completionTokens: completionTokens(attributes),
      cachedTokens:
        count(attributes['gen_ai.usage.cache_read.input_tokens']) ??
        count(attributes['llm.token_count.prompt_details.cache_read']),
      costUsd: money(attributes['llm.cost.total']),
      extra,
    },
  });
}

function requestedCallEvent(runId: string, step: Step, call: RequestedCall, callId: string): ParseItem {
  return eventItem({
    id: `${runId}#call-${callId}`,
    runId,
    type: 'tool-call',
    time: isoTime(step.span.end ?? step.span.start),
    source: sourceOf(step.span),
    data: { step: step.step, callId, tool: call.name, arguments: call.arguments, command: commandOf(call.arguments) },
  });
}

function toolEvents(runId: string, span: Span, step: number, callId: string): ParseItem[] {
  const attributes = span.attributes;
  const argumentsValue = readToolArguments(attributes);
  const result = attributes['gen_ai.tool.call.result'] ?? attributes['output.value'];
  const exitCode = attributes['process.exit.code'];
  return [
    eventItem({
      id: `${runId}#call-${callId}`,
      runId,
      type: 'tool-call',
      time: isoTime(span.start),
      source: sourceOf(span),
      data: {
        step,
        callId,
        tool: toolName(span),
        arguments: argumentsValue,
        command: commandOf(argumentsValue) ?? asText(attributes['process.command_line']),
      },
    }),
    eventItem({
      id: `${runId}#result-${callId}`,
      runId,
      type: 'tool-result',
      time: isoTime(span.end ?? span.start),
      source: sourceOf(span),
      data: {
        step,
        callId,
        output: result === undefined ? '' : typeof result === 'string' ? result : JSON.stringify(result),
        exitCode: typeof exitCode === 'number' && Number.isInteger(exitCode) ? exitCode : undefined,
        error: span.isError
          ? (span.statusMessage ?? exceptionMessage(span) ?? asText(attributes['error.type']) ?? 'error')
          : undefined,
      },
    }),
  ];
}

/**
 * The step whose model asked for this tool call, and the request it answers: the request with the span's call id,
 * else the latest step started before the tool whose model asked for a call of that name not yet answered. Without
 * either, the latest step before the tool. The request found is marked answered.
 */
function findIssuingStep(
  span: Span,
  tool: string,
  steps: readonly Step[],
  matched: Set<RequestedCall>,
): { step: number; call?: RequestedCall } | undefined {
  const id = asText(span.attributes['gen_ai.tool.call.id']) ?? asText(span.attributes['tool_call.id']);
  const found = (step: Step, call: RequestedCall) => {
    matched.add(call);
    return { step: step.step, call };
  };
  if (id) {
    for (const step of steps) {
      const call = step.requested.find((candidate) => candidate.id === id);
      if (call) return found(step, call);
    }
  }
  const before = steps.filter((step) => step.span.start <= span.start);
  for (const step of [...before].reverse()) {
    const call = step.requested.find((candidate) => candidate.name === tool && !matched.has(candidate));
    if (call && (id === undefined || call.id === undefined)) return found(step, call);
  }
  const latest = before.at(-1);
  return latest ? { step: latest.step } : undefined;
}

function toolName(span: Span): string {
  const attributes = span.attributes;
  return (
    asText(attributes['gen_ai.tool.name']) ??
    asText(attributes['tool.name']) ??
    asText(span.name.replace(/^execute_tool\s+/, '')) ??
    'tool'
  );
}

/** The span kinds OpenInference defines; a span of another kind cannot be read as any of them. */
const OPENINFERENCE_KINDS = new Set([
  'LLM',
  'EMBEDDING',
  'CHAIN',
  'RETRIEVER',
  'RERANKER',
  'TOOL',
  'AGENT',
  'GUARDRAIL',
  'EVALUATOR',
  'PROMPT',
  'UNKNOWN',
]);

/** GenAI operation names are short identifiers (`chat`, `execute_tool`, or a system's own name for one). */
const OPERATION_NAME = /^[a-z][\w.-]{0,63}$/i;

/**
 * Why a span's kind cannot be read, when it names one: an OpenInference kind the specification does not define, or a
 * GenAI operation name that is no name at all. Such a span is rejected rather than passed over as unrelated (a span
 * that names no kind, such as an HTTP call, is simply not an agent's).
 */
function unreadableSpanKind(attributes: Record<string, unknown>): string | undefined {
  const operation = attributes['gen_ai.operation.name'];
  if (operation !== undefined && (typeof operation !== 'string' || !OPERATION_NAME.test(operation))) {
    return `malformed span: gen_ai.operation.name is not an operation name (${describeValue(operation)})`;
  }
  const kind = attributes['openinference.span.kind'];
  if (kind !== undefined && (typeof kind !== 'string' || !OPENINFERENCE_KINDS.has(kind.toUpperCase()))) {
    return `malformed span: openinference.span.kind is not a kind OpenInference defines (${describeValue(kind)})`;
  }
  return undefined;
}

/** A short description of an attribute value for a reason: its start, and its length when it is long. */
function describeValue(value: unknown): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  return text.length > 40 ? `"${text.slice(0, 40)}…", ${text.length} characters` : JSON.stringify(text);
}

function classifySpan(span: Span): SpanRole {
  const attributes = span.attributes;
  const operation = asText(attributes['gen_ai.operation.name']);
  if (operation) {
    if (operation === 'invoke_agent' || operation === 'create_agent') return 'agent';
    if (operation === 'chat' || operation === 'text_completion' || operation === 'generate_content') return 'llm';
    if (operation === 'execute_tool') return 'tool';
    return 'other';
  }
  const kind = asText(attributes['openinference.span.kind'])?.toUpperCase();
  if (kind) {
    if (kind === 'AGENT') return 'agent';
    if (kind === 'LLM') return 'llm';
    if (kind === 'TOOL') return 'tool';
    return 'other';
  }
  if (attributes['gen_ai.tool.name'] !== undefined) return 'tool';
  if (attributes['gen_ai.request.model'] !== undefined || attributes['llm.model_name'] !== undefined) return 'llm';
  return 'other';
}

/** The name of the nearest agent span above a span, for multi-agent traces. */
function agentName(span: Span, byId: ReadonlyMap<string, Span>): string | undefined {
  const visited = new Set<string>();
  for (let parent = byId.get(span.parentSpanId ?? ''); parent; parent = byId.get(parent.parentSpanId ?? '')) {
    if (visited.has(parent.spanId)) return undefined;
    visited.add(parent.spanId);
    if (classifySpan(parent) === 'agent') {
      return asText(parent.attributes['gen_ai.agent.name']) ?? asText(parent.attributes['agent.name']) ?? parent.name;
    }
  }
  return undefined;
}

/** A `selfharness.*` attribute from the root span, else from the trace's other spans in start order. */
function findAttribute(root: Span, spans: readonly Span[], key: string): string | undefined {
  for (const span of [root, ...spans]) {
    const value = asText(span.attributes[key]);
    if (value !== undefined) return value;
  }
  return undefined;
}

function findNumber(root: Span, spans: readonly Span[], key: string): number | undefined {
  for (const span of [root, ...spans]) {
    const value = span.attributes[key];
    if (typeof value === 'number' && Number.isFinite(value)) return value;
  }
  return undefined;
}

function requestedModel(attributes: Record<string, unknown>): string | undefined {
  return (
    asText(attributes['gen_ai.request.model']) ??
    asText(attributes['llm.model_name']) ??
    asText(attributes['gen_ai.response.model'])
  );
}

function promptTokens(attributes: Record<string, unknown>): number | undefined {
  return count(attributes['gen_ai.usage.input_tokens']) ?? count(attributes['llm.token_count.prompt']);
}

function completionTokens(attributes: Record<string, unknown>): number | undefined {
  return count(attributes['gen_ai.usage.output_tokens']) ?? count(attributes['llm.token_count.completion']);
}

interface Message {
  role: string;
  texts: string[];
  reasoning: string[];
  calls: RequestedCall[];
}

/**
 * Messages from either convention: GenAI `gen_ai.{input,output}.messages` (JSON text or structured, parts of type
 * `text`, `reasoning`, `tool_call`) or OpenInference's flattened `llm.{input,output}_messages.<i>.message.*`.
 */
function readMessages(attributes: Record<string, unknown>, direction: 'input' | 'output'): Message[] {
  const genAi = parseMaybeJson(attributes[`gen_ai.${direction}.messages`]);
  if (Array.isArray(genAi)) return genAi.filter(isRecord).map(readGenAiMessage);
  return readOpenInferenceMessages(attributes, `llm.${direction}_messages.`);
}

function readGenAiMessage(message: Record<string, unknown>): Message {
  const result: Message = { role: asText(message.role) ?? '', texts: [], reasoning: [], calls: [] };
  const parts = Array.isArray(message.parts) ? message.parts.filter(isRecord) : [];
  for (const part of parts) {
    if (part.type === 'text' && typeof part.content === 'string') result.texts.push(part.content);
    else if (part.type === 'reasoning' && typeof part.content === 'string') result.reasoning.push(part.content);
    else if (part.type === 'tool_call' && typeof part.name === 'string') {
      result.calls.push({
        id: asText(part.id),
        name: part.name,
        arguments: toArguments(parseMaybeJson(part.arguments)),
      });
    }
  }
  if (typeof message.content === 'string') result.texts.push(message.content);
  return result;
}

function readOpenInferenceMessages(attributes: Record<string, unknown>, prefix: string): Message[] {
  const messages: Message[] = [];
  const calls = new Map<string, { id?: string; name?: string; arguments?: unknown }>();
  const pattern = /^(\d+)\.message\.(.+)$/;
  for (const [key, value] of Object.entries(attributes)) {
    if (!key.startsWith(prefix)) continue;
    const match = key.slice(prefix.length).match(pattern);
    if (!match) continue;
    const index = Number(match[1]);
    const field = match[2] ?? '';
    messages[index] ??= { role: '', texts: [], reasoning: [], calls: [] };
    const message = messages[index];
    if (field === 'role') message.role = asText(value) ?? '';
    else if (field === 'content' && typeof value === 'string') message.texts.push(value);
    else if (/^contents\.\d+\.message_content\.text$/.test(field) && typeof value === 'string')
      message.texts.push(value);
    const call = field.match(/^tool_calls\.(\d+)\.tool_call\.(id|function\.name|function\.arguments)$/);
    if (call) {
      const callKey = `${index}.${call[1]}`;
      const entry = calls.get(callKey) ?? {};
      if (call[2] === 'id') entry.id = asText(value);
      else if (call[2] === 'function.name') entry.name = asText(value);
      else entry.arguments = value;
      calls.set(callKey, entry);
    }
  }
  const ordered = [...calls.entries()].sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }));
  for (const [callKey, call] of ordered) {
    const message = messages[Number(callKey.split('.')[0])];
    if (message && call.name) {
      message.calls.push({ id: call.id, name: call.name, arguments: toArguments(parseMaybeJson(call.arguments)) });
    }
  }
  return messages.filter((message) => message !== undefined);
}

function readRequestedCalls(span: Span): RequestedCall[] {
  return readMessages(span.attributes, 'output').flatMap((message) => message.calls);
}

function readOutputText(attributes: Record<string, unknown>): { message: string; reasoning?: string } {
  const messages = readMessages(attributes, 'output');
  const texts = messages.flatMap((message) => message.texts);
  const reasoning = messages.flatMap((message) => message.reasoning);
  const fallback = texts.length === 0 && messages.length === 0 ? asText(attributes['output.value']) : undefined;
  return {
    message: fallback ?? texts.join('\n'),
    reasoning: reasoning.length > 0 ? reasoning.join('\n') : undefined,
  };
}

function firstUserText(attributes: Record<string, unknown>): string | undefined {
  const user = readMessages(attributes, 'input').find((message) => message.role === 'user' && message.texts.length > 0);
  return user?.texts.join('\n');
}

/**
 * A tool span's arguments: GenAI `gen_ai.tool.call.arguments`, else OpenInference `input.value` (the values passed),
 * else `tool.parameters` when it holds values rather than a JSON schema.
 */
function readToolArguments(attributes: Record<string, unknown>): Record<string, unknown> {
  for (const key of ['gen_ai.tool.call.arguments', 'input.value', 'tool.parameters']) {
    const value = parseMaybeJson(attributes[key]);
    if (value === undefined) continue;
    if (key === 'tool.parameters' && isRecord(value) && value.type === 'object' && 'properties' in value) continue;
    return toArguments(value);
  }
  return {};
}

function toArguments(value: unknown): Record<string, unknown> {
  if (isRecord(value)) return value;
  return value === undefined ? {} : { input: value };
}

/** The shell command of a call: its `command`/`cmd` argument (a string, or an argv array). */
function commandOf(argumentsValue: Record<string, unknown>): string | undefined {
  for (const key of ['command', 'cmd']) {
    const value = argumentsValue[key];
    if (typeof value === 'string' && value.trim() !== '') return value;
    if (Array.isArray(value) && value.every((part) => typeof part === 'string')) return value.join(' ');
  }
  return undefined;
}

function exceptionMessage(span: Span): string | undefined {
  const exception = span.events.find((event) => event.name === 'exception');
  if (!exception) return undefined;
  const type = asText(exception.attributes['exception.type']);
  const message = asText(exception.attributes['exception.message']);
  return type && message ? `${type}: ${message}` : (message ?? type);
}

class NestingTooDeep extends Error {}

type DecodedAttributes = { attributes: Record<string, unknown> } | { reason: string };

/** Decodes a span's attributes; values nested deeper than `MAX_ATTRIBUTE_DEPTH` make a reason instead. */
function tryDecodeAttributes(list: readonly { key: unknown; value: unknown }[] | undefined): DecodedAttributes {
  try {
    return { attributes: decodeAttributes(list) };
  } catch (error) {
    if (!(error instanceof NestingTooDeep)) throw error;
    return { reason: `malformed span: an attribute value is nested deeper than ${MAX_ATTRIBUTE_DEPTH} levels` };
  }
}

function decodedAttributes(decoded: DecodedAttributes): Record<string, unknown> {
  return 'attributes' in decoded ? decoded.attributes : {};
}

/** OTLP `AnyValue` → a plain value: int64 strings become numbers, arrays and key-value lists become JSON values. */
function decodeValue(value: unknown, depth = 0): unknown {
  if (depth > MAX_ATTRIBUTE_DEPTH) throw new NestingTooDeep();
  if (!isRecord(value)) return undefined;
  if ('stringValue' in value) return value.stringValue;
  if ('boolValue' in value) return value.boolValue;
  if ('intValue' in value) return Number(value.intValue);
  if ('doubleValue' in value) return Number(value.doubleValue);
  if ('bytesValue' in value) return value.bytesValue;
  if ('arrayValue' in value) {
    const values = isRecord(value.arrayValue) && Array.isArray(value.arrayValue.values) ? value.arrayValue.values : [];
    return values.map((item) => decodeValue(item, depth + 1));
  }
  if ('kvlistValue' in value) {
    const values =
      isRecord(value.kvlistValue) && Array.isArray(value.kvlistValue.values) ? value.kvlistValue.values : [];
    return decodeAttributes(values.filter(isRecord) as { key: string; value: unknown }[], depth + 1);
  }
  return undefined;
}

function decodeAttributes(
  list: readonly { key: unknown; value: unknown }[] | undefined,
  depth = 0,
): Record<string, unknown> {
  const attributes: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) {
    if (typeof key === 'string') attributes[key] = decodeValue(value, depth);
  }
  return attributes;
}

function compareSpans(a: Span, b: Span): number {
  if (a.start !== b.start) return a.start < b.start ? -1 : 1;
  return a.spanId < b.spanId ? -1 : a.spanId > b.spanId ? 1 : 0;
}

function sourceOf(span: Span) {
  return { format: FORMAT, file: span.file, position: span.position };
}

function isoTime(unixNanos: bigint): string | undefined {
  const milliseconds = Number(unixNanos / 1_000_000n);
  const date = new Date(milliseconds);
  return milliseconds > 0 && !Number.isNaN(date.getTime()) ? date.toISOString() : undefined;
}

function asText(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
}

function money(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

function parseMaybeJson(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const trimmed = value.trim();
  if (!trimmed.startsWith('{') && !trimmed.startsWith('[')) return value;
  try {
    return JSON.parse(trimmed);
  } catch {
    return value;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isOtlpHead(file: string, head: string): boolean {
  if (LINE_FILE.test(file)) {
    // A damaged first line must not hide the exports after it: any line of the head that starts an export counts.
    const lines = head.split('\n');
    const first = lines.find((line) => line.trim() !== '') ?? '';
    return first.includes('"resourceSpans"') || lines.some((line) => /^\s*\{\s*"resourceSpans"\s*:\s*\[/.test(line));
  }
  return /\.json$/i.test(file) && /^\s*\{[\s\S]*?"resourceSpans"\s*:\s*\[/.test(head);
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function readHead(path: string): string {
  let descriptor: number | undefined;
  try {
    descriptor = openSync(path, 'r');
    const buffer = Buffer.alloc(HEAD_BYTES);
    const length = readSync(descriptor, buffer, 0, HEAD_BYTES, 0);
    return buffer.toString('utf8', 0, length);
  } catch {
    return '';
  } finally {
    if (descriptor !== undefined) closeSync(descriptor);
  }
}
