import { z } from 'zod';
import { Criticality } from '../core/index.js';

/**
 * The diagnosis prompt and the checks on its answer, as pure functions of a run's digest. Changing the prompt's text
 * or the reply's shape changes what a diagnosis means, so it must come with a new `DIAGNOSIS_PROMPT_VERSION`: cached
 * diagnoses are keyed by it, and older ones stay readable beside the new.
 */
export const DIAGNOSIS_PROMPT_VERSION = 'diagnosis-v1';

/**
 * The mechanisms the deterministic detectors know (`mechanisms` in detectors.ts); the model is asked to reuse these
 * names where one fits. Kept here as prompt text on purpose: a new detector changes the prompt only together with
 * `DIAGNOSIS_PROMPT_VERSION`, so cached diagnoses never mix two prompts under one version.
 */
export const KNOWN_MECHANISMS = [
  'repeated-failed-command',
  'tool-call-loop',
  'missing-required-artifact',
  'lost-environment-state',
  'missing-dependency',
  'exploration-without-implementation',
  'budget-exhaustion',
  'malformed-tool-call',
  'premature-completion',
] as const;

export interface DigestToolCall {
  tool: string;
  command?: string;
  /** The arguments as JSON text, for calls that run no shell command. */
  arguments?: string;
  exitCode?: number;
  error?: string;
  output?: string;
}

export interface DigestStep {
  step: number;
  role: string;
  message: string;
  reasoning?: string;
  calls: DigestToolCall[];
}

export interface DigestTest {
  name: string;
  status: string;
  message?: string;
}

export interface DigestDetection {
  mechanism: string;
  firstStep?: number;
  evidenceSteps: number[];
  excerpt?: string;
}

/** What the diagnosis sees of one failed run: read from the log by `loadRunDigest`, or built by hand in tests. */
export interface RunDigest {
  runId: string;
  task: string;
  dataset?: string;
  model?: string;
  outcome: string;
  failureReason?: string;
  reward?: number;
  instruction?: string;
  steps: DigestStep[];
  tests: DigestTest[];
  detections: DigestDetection[];
}

/** The reply the model must give, as it is asked for in the prompt (snake_case, as JSON replies usually are). */
export const DiagnosisReply = z.object({
  terminal_cause: z.string().trim().min(1).max(600),
  criticality: Criticality,
  agent_mechanism: z.string().trim().min(1).max(100),
  evidence_step_ids: z.array(z.number().int().nonnegative()).max(40),
  reasoning: z.string().max(6000),
});
export type DiagnosisReply = z.infer<typeof DiagnosisReply>;

export interface PromptLimits {
  /** Upper bound on the characters of the user message (the run); older steps in the middle are left out first. */
  maxChars: number;
  messageChars: number;
  outputChars: number;
  commandChars: number;
  instructionChars: number;
  maxTests: number;
}

export const DEFAULT_PROMPT_LIMITS: PromptLimits = {
  maxChars: 24_000,
  messageChars: 700,
  outputChars: 900,
  commandChars: 400,
  instructionChars: 2_000,
  maxTests: 15,
};

export const DIAGNOSIS_SYSTEM_PROMPT = `You diagnose why an AI agent failed a task. You get one failed run: the task, the agent's steps with their tool calls and results, the verifier's results, and hits of deterministic failure detectors. Find the mechanism that made the run fail.

Answer with one JSON object and nothing else:
{
  "terminal_cause": "one sentence: what finally made the run fail (what the verifier saw, or why the agent stopped)",
  "criticality": "root-cause" | "contributor" | "friction" | "unknown",
  "agent_mechanism": "the agent behaviour behind it, as a short kebab-case name",
  "evidence_step_ids": [step numbers from the run that show the mechanism],
  "reasoning": "two to five sentences linking the evidence to the failure"
}

criticality: "root-cause" when the mechanism alone explains the failure; "contributor" when it made failure likelier but something else decided it; "friction" when it only cost time or steps; "unknown" when the run does not show why it failed.
agent_mechanism: use one of these names when it fits: ${KNOWN_MECHANISMS.join(', ')}; otherwise a new short kebab-case name (e.g. wrong-file-edited, misread-requirement).
evidence_step_ids: only numbers that appear as "step N" in the run below; at least one unless criticality is "unknown".`;

/** The prompt for one run: the system message above and the run rendered within `limits.maxChars`. */
export function buildDiagnosisPrompt(
  digest: RunDigest,
  limits: PromptLimits = DEFAULT_PROMPT_LIMITS,
): { system: string; user: string; shownSteps: number[] } {
  const header = renderHeader(digest, limits);
  const footer = renderFooter(digest, limits);
  const blocks = digest.steps.map((step) => ({ step: step.step, text: renderStep(step, limits) }));
  const budget = Math.max(0, limits.maxChars - header.length - footer.length);
  const shown = selectSteps(digest, blocks, budget);
  const lines: string[] = [header];
  if (digest.steps.length === 0) lines.push('(the run recorded no steps)');
  let previous: number | undefined;
  for (const [index, block] of blocks.entries()) {
    if (!shown.has(block.step)) continue;
    const skipped = countSkipped(previous, index);
    if (skipped > 0) lines.push(`[… ${skipped} step${skipped === 1 ? '' : 's'} left out …]`);
    lines.push(block.text);
    previous = index;
  }
  const trailing = countSkipped(previous, blocks.length);
  if (trailing > 0) lines.push(`[… ${trailing} step${trailing === 1 ? '' : 's'} left out …]`);
  lines.push(footer);
  return {
    system: DIAGNOSIS_SYSTEM_PROMPT,
    user: lines.join('\n'),
    shownSteps: blocks.filter((block) => shown.has(block.step)).map((block) => block.step),
  };
}

/** The longest "[… n steps left out …]" line, with its newline. */
const GAP_LINE_CHARS = 40;

function countSkipped(previous: number | undefined, index: number): number {
  return index - (previous === undefined ? 0 : previous + 1);
}

/**
 * Chooses the steps that fit the budget, most telling first: the steps detectors point at, the last steps (where a
 * run ends), steps whose calls failed, the first steps (how the agent started), then the rest from the end backwards.
 */
function selectSteps(
  digest: RunDigest,
  blocks: readonly { step: number; text: string }[],
  budget: number,
): Set<number> {
  const total = blocks.reduce((sum, block) => sum + block.text.length + 1, 0);
  if (total <= budget) return new Set(blocks.map((block) => block.step));
  // Each step shown may be followed by a "[… n steps left out …]" line.
  const cost = (block: { text: string }) => block.text.length + 1 + GAP_LINE_CHARS;
  const available = budget - GAP_LINE_CHARS;
  const priority = new Map<number, number>();
  const raise = (step: number, value: number) => priority.set(step, Math.max(priority.get(step) ?? 0, value));
  for (const detection of digest.detections) {
    for (const step of detection.evidenceSteps) raise(step, 5);
    if (detection.firstStep !== undefined) raise(detection.firstStep, 5);
  }
  for (const block of blocks.slice(-6)) raise(block.step, 4);
  for (const step of digest.steps) {
    if (step.calls.some((call) => (call.exitCode !== undefined && call.exitCode !== 0) || call.error))
      raise(step.step, 3);
  }
  for (const block of blocks.slice(0, 3)) raise(block.step, 2);
  const order = blocks
    .map((block, index) => ({ ...block, index, priority: priority.get(block.step) ?? 0 }))
    .sort((left, right) => right.priority - left.priority || right.index - left.index);
  const shown = new Set<number>();
  let used = 0;
  for (const block of order) {
    if (used + cost(block) > available) continue;
    shown.add(block.step);
    used += cost(block);
  }
  return shown;
}

function renderHeader(digest: RunDigest, limits: PromptLimits): string {
  const lines = [`Run ${digest.runId}`, `Task: ${digest.task}`];
  if (digest.dataset) lines.push(`Dataset: ${digest.dataset}`);
  if (digest.model) lines.push(`Agent model: ${digest.model}`);
  lines.push(
    `Outcome: ${digest.outcome}${digest.reward !== undefined ? ` (reward ${digest.reward})` : ''}${digest.failureReason ? `; recorded reason: ${digest.failureReason}` : ''}`,
  );
  if (digest.instruction) lines.push('', 'Instruction:', cut(digest.instruction, limits.instructionChars));
  lines.push('', `Steps (${digest.steps.length}):`);
  return lines.join('\n');
}

function renderStep(step: DigestStep, limits: PromptLimits): string {
  const lines = [`step ${step.step} [${step.role}]: ${cut(step.message, limits.messageChars)}`];
  if (step.reasoning) lines.push(`  reasoning: ${cut(step.reasoning, Math.floor(limits.messageChars / 2))}`);
  for (const call of step.calls) {
    const what = call.command ?? call.arguments ?? '';
    lines.push(`  call ${call.tool}: ${cut(what, limits.commandChars)}`);
    const status = [
      call.exitCode !== undefined ? `exit ${call.exitCode}` : undefined,
      call.error ? `error: ${cut(call.error, 300)}` : undefined,
    ].filter(Boolean);
    if (status.length > 0) lines.push(`  → ${status.join('; ')}`);
    if (call.output) lines.push(`  output: ${cutMiddle(call.output, limits.outputChars)}`);
  }
  return lines.join('\n');
}

function renderFooter(digest: RunDigest, limits: PromptLimits): string {
  const lines = ['', 'Verifier:'];
  if (digest.tests.length === 0) lines.push('(no test results recorded)');
  const ordered = [...digest.tests].sort((left, right) => rankTest(left) - rankTest(right));
  for (const test of ordered.slice(0, limits.maxTests)) {
    lines.push(`- ${test.name}: ${test.status}${test.message ? ` (${cut(test.message, 300)})` : ''}`);
  }
  if (ordered.length > limits.maxTests) lines.push(`- … ${ordered.length - limits.maxTests} more tests`);
  lines.push('', 'Detector hits:');
  if (digest.detections.length === 0) lines.push('(none)');
  for (const detection of digest.detections.slice(0, 20)) {
    const steps =
      detection.evidenceSteps.length > 0 ? ` at steps ${detection.evidenceSteps.slice(0, 12).join(', ')}` : '';
    lines.push(`- ${detection.mechanism}${steps}${detection.excerpt ? `: ${cut(detection.excerpt, 300)}` : ''}`);
  }
  return lines.join('\n');
}

function rankTest(test: DigestTest): number {
  return test.status === 'failed' ? 0 : test.status === 'other' ? 1 : 2;
}

function cut(text: string, limit: number): string {
  const flat = text.trim();
  return flat.length <= limit ? flat : `${flat.slice(0, limit)}… [${flat.length - limit} more characters]`;
}

/** Keeps the start and the end of long tool output, where commands echo what they do and errors appear. */
function cutMiddle(text: string, limit: number): string {
  const flat = text.trim();
  if (flat.length <= limit) return flat;
  const head = Math.floor(limit / 3);
  const tail = limit - head;
  return `${flat.slice(0, head)} […${flat.length - limit} characters…] ${flat.slice(-tail)}`;
}

/** A model's reply, checked against the run: what a diagnosis event stores, or why the reply was rejected. */
export type CheckedDiagnosis =
  | {
      ok: true;
      terminalCause: string;
      criticality: Criticality;
      mechanism: string;
      evidenceSteps: number[];
      reasoning: string;
    }
  | { ok: false; reason: string };

/**
 * Checks what the schema cannot: every evidence step must be a step of the run, and a diagnosis that names a cause
 * must point at evidence. The mechanism is normalised to kebab-case, so the model's names group with the detectors'.
 */
export function checkDiagnosisReply(reply: DiagnosisReply, digest: RunDigest): CheckedDiagnosis {
  const known = new Set(digest.steps.map((step) => step.step));
  const unknown = reply.evidence_step_ids.filter((step) => !known.has(step));
  if (unknown.length > 0) {
    const range =
      known.size === 0 ? 'it recorded no steps' : `its steps are ${describeSteps([...known].sort((a, b) => a - b))}`;
    return {
      ok: false,
      reason: `evidence step${unknown.length === 1 ? '' : 's'} ${unknown.join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not in run ${digest.runId} (${range})`,
    };
  }
  if (reply.evidence_step_ids.length === 0 && reply.criticality !== 'unknown' && known.size > 0) {
    return { ok: false, reason: `the diagnosis names a ${reply.criticality} but points at no evidence step` };
  }
  const mechanism = reply.agent_mechanism
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (mechanism === '')
    return { ok: false, reason: `agent_mechanism "${reply.agent_mechanism}" has no letters or digits` };
  return {
    ok: true,
    terminalCause: reply.terminal_cause,
    criticality: reply.criticality,
    mechanism,
    evidenceSteps: [...new Set(reply.evidence_step_ids)].sort((a, b) => a - b),
    reasoning: reply.reasoning.trim(),
  };
}

/** "0–41" for a contiguous run of steps, else the first and last few. */
function describeSteps(steps: readonly number[]): string {
  const first = steps[0];
  const last = steps[steps.length - 1];
  if (first === undefined || last === undefined) return 'none';
  if (last - first + 1 === steps.length) return first === last ? `${first}` : `${first}–${last}`;
  return steps.length <= 10 ? steps.join(', ') : `${steps.slice(0, 5).join(', ')}, …, ${steps.slice(-3).join(', ')}`;
}
