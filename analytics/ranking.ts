import { createHash } from 'node:crypto';
import type { Criticality } from '../core/index.js';
import type { EvidenceCall, Failure, FailureGroup } from './clustering.js';

/**
 * From groups of failures to ranked weakness cluster cards: what the proposer reads and the analyst sees. Pure: the
 * passing runs to preserve are looked up by the caller and passed in.
 */

export type MiningMode = 'kmeans' | 'signature';

/** A cited failure: the run, the steps that show the mechanism, and what happened there. */
export interface EvidenceExcerpt {
  runId: string;
  task: string;
  model: string;
  mechanism: string;
  firstStep: number | null;
  /** Step numbers in the run (`steps.step`, `tool_calls.step`). */
  steps: number[];
  excerpt: string;
  calls: EvidenceCall[];
  terminalCause?: string;
}

/** A passing run on one of the cluster's tasks: a fix for the cluster must not make it fail. */
export interface PassingRun {
  runId: string;
  task: string;
  model: string;
}

/** One ranked weakness, complete enough to propose a fix from and to check that fix against. */
export interface ClusterCard {
  clusterId: string;
  rank: number;
  label: string;
  mode: MiningMode;
  /** For signature mode, the exact signature shared by every member. */
  signature?: string;
  criticality: Criticality;
  score: number;
  mechanisms: { mechanism: string; failures: number }[];
  failureCount: number;
  runCount: number;
  taskCount: number;
  tasks: string[];
  models: string[];
  /** Every failed run in the cluster, sorted. */
  runIds: string[];
  evidence: EvidenceExcerpt[];
  preserve: { passingRunCount: number; passingRuns: PassingRun[] };
}

const MECHANISM_TITLES: Record<string, string> = {
  'repeated-failed-command': 'Repeated failed command',
  'tool-call-loop': 'Tool-call loop',
  'missing-required-artifact': 'Missing required artifact',
  'lost-environment-state': 'Lost environment state',
  'missing-dependency': 'Missing dependency',
  'exploration-without-implementation': 'Exploration without implementation',
  'budget-exhaustion': 'Budget exhaustion',
  'malformed-tool-call': 'Malformed tool call',
  'premature-completion': 'Premature completion claim',
};

/** The readable name of a mechanism id (`repeated-failed-command` → `Repeated failed command`). */
export function mechanismTitle(mechanism: string): string {
  const known = MECHANISM_TITLES[mechanism];
  if (known) return known;
  const words = mechanism.replace(/[-_]+/g, ' ').trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/**
 * How much a cluster's criticality weighs in its score. A root cause is what a fix must address; an unknown
 * criticality (no diagnosis) sits between a contributor and friction.
 */
export const CRITICALITY_WEIGHTS: Record<Criticality, number> = {
  'root-cause': 1,
  contributor: 0.7,
  unknown: 0.5,
  friction: 0.3,
};

const CRITICALITY_ORDER: readonly Criticality[] = ['root-cause', 'contributor', 'friction', 'unknown'];

/**
 * A cluster's criticality: the most frequent one among its members' diagnoses (ties go to the more severe), or
 * `unknown` when none of them was diagnosed.
 */
export function clusterCriticality(failures: readonly Failure[]): Criticality {
  const counts = new Map<Criticality, number>();
  for (const failure of failures) {
    const criticality = failure.diagnosis?.criticality;
    if (criticality && criticality !== 'unknown') counts.set(criticality, (counts.get(criticality) ?? 0) + 1);
  }
  let best: Criticality = 'unknown';
  let bestCount = 0;
  for (const criticality of CRITICALITY_ORDER) {
    const count = counts.get(criticality) ?? 0;
    if (count > bestCount) {
      best = criticality;
      bestCount = count;
    }
  }
  return best;
}

/**
 * The ranking score: criticality weight × failed runs × √tasks. Runs measure how often a fix would matter; the
 * square root of the task count rewards spread (a harness weakness shows on many tasks) without letting a thin
 * pattern over many tasks beat a heavy one.
 */
export function clusterScore(criticality: Criticality, runCount: number, taskCount: number): number {
  return CRITICALITY_WEIGHTS[criticality] * runCount * Math.sqrt(taskCount);
}

/** The program a command runs, with its subcommand: `cd /repo && mvn -q test` → `mvn test`. */
export function commandHead(command: string): string | undefined {
  const segments = command
    .split('\n')[0]
    ?.split(/&&|\|\||;|\|/)
    .map((segment) => segment.trim())
    .filter((segment) => segment !== '' && !/^(cd|export|source|set|echo)\b/.test(segment));
  const words = (segments?.[0] ?? '').split(/\s+/).filter((word) => word !== '' && !/^\w+=/.test(word));
  const program = words[0]?.split('/').pop();
  if (!program) return undefined;
  const subcommand = words.slice(1).find((word) => !word.startsWith('-'));
  return subcommand && /^[a-z][\w:.-]*$/.test(subcommand) && !subcommand.includes('.')
    ? `${program} ${subcommand}`
    : program;
}

function mostFrequent(values: readonly string[]): { value: string; count: number } | undefined {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  let best: { value: string; count: number } | undefined;
  for (const [value, count] of counts) {
    if (!best || count > best.count || (count === best.count && value < best.value)) best = { value, count };
  }
  return best;
}

/**
 * A short readable label: the main mechanism (and a second one that covers at least a quarter of the members), then
 * what most members share: the diagnosed terminal cause, else the command they were running.
 */
export function clusterLabel(failures: readonly Failure[]): string {
  const mechanisms = countMechanisms(failures);
  const [first, second] = mechanisms;
  let label = mechanismTitle(first?.mechanism ?? 'unknown');
  if (second && second.failures >= failures.length / 4) label += ` + ${mechanismTitle(second.mechanism).toLowerCase()}`;
  const threshold = Math.max(1, failures.length * 0.3);
  const cause = mostFrequent(
    failures.flatMap((failure) => (failure.diagnosis?.terminalCause ? [failure.diagnosis.terminalCause.trim()] : [])),
  );
  if (cause && cause.count >= threshold) return `${label}: ${truncate(cause.value, 80)}`;
  const heads = failures.flatMap((failure) => {
    const perFailure = new Set(
      failure.calls.flatMap((call) => (call.command ? [commandHead(call.command) ?? ''] : [])).filter(Boolean),
    );
    return [...perFailure];
  });
  const head = mostFrequent(heads);
  if (head && head.count >= threshold) return `${label}: \`${truncate(head.value, 40)}\``;
  return label;
}

function countMechanisms(failures: readonly Failure[]): { mechanism: string; failures: number }[] {
  const counts = new Map<string, number>();
  for (const failure of failures) counts.set(failure.mechanism, (counts.get(failure.mechanism) ?? 0) + 1);
  return [...counts.entries()]
    .map(([mechanism, count]) => ({ mechanism, failures: count }))
    .sort((left, right) => right.failures - left.failures || (left.mechanism < right.mechanism ? -1 : 1));
}

function truncate(text: string, length: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > length ? `${flat.slice(0, length - 1)}…` : flat;
}

/**
 * Picks 3–5 representative failures: closest to the cluster's centre first (k-means) or in run order (signature),
 * preferring failures with evidence steps, then a new task, then a new run, so the excerpts show the pattern's
 * spread rather than one run five times.
 */
export function selectEvidence(group: FailureGroup, failures: readonly Failure[], maximum = 5): Failure[] {
  const order = group.members
    .map((index, position) => ({ index, distance: group.distances?.[position] ?? 0 }))
    .sort((left, right) => {
      const a = failures[left.index] as Failure;
      const b = failures[right.index] as Failure;
      return (
        Number(b.evidenceSteps.length > 0) - Number(a.evidenceSteps.length > 0) ||
        left.distance - right.distance ||
        compareText(a.runId, b.runId) ||
        compareText(a.mechanism, b.mechanism)
      );
    })
    .map((entry) => failures[entry.index] as Failure);
  const chosen: Failure[] = [];
  const tasks = new Set<string>();
  const runs = new Set<string>();
  const hasSteps = (failure: Failure) => failure.evidenceSteps.length > 0;
  const passes: ((failure: Failure) => boolean)[] = [
    (failure) => hasSteps(failure) && !tasks.has(failure.task) && !runs.has(failure.runId),
    (failure) => hasSteps(failure) && !runs.has(failure.runId),
    (failure) => !runs.has(failure.runId),
    () => true,
  ];
  for (const accept of passes) {
    for (const failure of order) {
      if (chosen.length >= maximum) break;
      if (chosen.includes(failure) || !accept(failure)) continue;
      chosen.push(failure);
      tasks.add(failure.task);
      runs.add(failure.runId);
    }
  }
  return chosen;
}

function compareText(left: string, right: string): number {
  return left < right ? -1 : left > right ? 1 : 0;
}

/** A cluster's id: a hash of its members, so the same failures grouped again get the same id. */
export function clusterIdOf(failures: readonly Failure[]): string {
  const keys = failures.map((failure) => `${failure.runId}\u0000${failure.mechanism}`).sort(compareText);
  return createHash('sha256').update(keys.join('\n')).digest('hex').slice(0, 12);
}

export interface CardOptions {
  mode: MiningMode;
  /** Passing runs per task (already filtered to the mined model and split, if any). */
  passingRunsByTask: ReadonlyMap<string, readonly PassingRun[]>;
  /** Passing runs listed on a card (default 20; the count covers all of them). */
  maxPassingRuns?: number;
  maxEvidence?: number;
}

/**
 * Builds a card per group and ranks them: by score (criticality, runs, task spread), then runs, then tasks, then
 * label and id, so the order is total and the same input always gives the same ranking.
 */
export function buildClusterCards(
  groups: readonly FailureGroup[],
  failures: readonly Failure[],
  options: CardOptions,
): ClusterCard[] {
  const cards = groups.map((group): ClusterCard => {
    const members = group.members.map((index) => failures[index] as Failure);
    const runIds = [...new Set(members.map((failure) => failure.runId))].sort(compareText);
    const tasks = [...new Set(members.map((failure) => failure.task))].sort(compareText);
    const models = [...new Set(members.map((failure) => failure.model))].sort(compareText);
    const criticality = clusterCriticality(members);
    const passing = tasks
      .flatMap((task) => options.passingRunsByTask.get(task) ?? [])
      .sort((left, right) => compareText(left.task, right.task) || compareText(left.runId, right.runId));
    return {
      clusterId: clusterIdOf(members),
      rank: 0,
      label: clusterLabel(members),
      mode: options.mode,
      ...(options.mode === 'signature' ? { signature: group.key } : {}),
      criticality,
      score: Math.round(clusterScore(criticality, runIds.length, tasks.length) * 1000) / 1000,
      mechanisms: countMechanisms(members),
      failureCount: members.length,
      runCount: runIds.length,
      taskCount: tasks.length,
      tasks,
      models,
      runIds,
      evidence: selectEvidence(group, failures, options.maxEvidence ?? 5).map((failure) => ({
        runId: failure.runId,
        task: failure.task,
        model: failure.model,
        mechanism: failure.mechanism,
        firstStep: failure.firstStep,
        steps: [...failure.evidenceSteps],
        excerpt: failure.excerpt,
        calls: [...failure.calls],
        ...(failure.diagnosis ? { terminalCause: failure.diagnosis.terminalCause } : {}),
      })),
      preserve: { passingRunCount: passing.length, passingRuns: passing.slice(0, options.maxPassingRuns ?? 20) },
    };
  });
  cards.sort(
    (left, right) =>
      right.score - left.score ||
      right.runCount - left.runCount ||
      right.taskCount - left.taskCount ||
      compareText(left.label, right.label) ||
      compareText(left.clusterId, right.clusterId),
  );
  return cards.map((card, index) => ({ ...card, rank: index + 1 }));
}
