import { kmeans } from 'ml-kmeans';
import { type Criticality, seededRandom } from '../core/index.js';

/**
 * Grouping failures into candidate weaknesses: k-means over failure embeddings with k chosen by silhouette, or the
 * paper's exact-signature grouping. Pure functions over values; randomness only from the seed passed in, so the same
 * input and seed give the same groups.
 */

/** The part of an LLM diagnosis that mining uses. */
export interface FailureDiagnosis {
  terminalCause: string;
  criticality: Criticality;
  mechanism: string;
  reasoning: string;
}

/** One detected mechanism in one failed run: the unit that is embedded, clustered and cited as evidence. */
export interface Failure {
  runId: string;
  mechanism: string;
  task: string;
  model: string;
  firstStep: number | null;
  evidenceSteps: readonly number[];
  excerpt: string;
  /** The tool calls at the evidence steps: what the agent ran and what came back. */
  calls: readonly EvidenceCall[];
  diagnosis?: FailureDiagnosis;
}

/** A tool call at an evidence step, as the `tool_calls` table holds it. */
export interface EvidenceCall {
  step: number;
  tool: string;
  command: string | null;
  exitCode: number | null;
  /** The error, else the start of the output. */
  output: string;
}

/** A candidate cluster: indices into the failure list, and for k-means each member's distance to the centroid. */
export interface FailureGroup {
  key: string;
  members: readonly number[];
  /** Distance of each member to the group's centre (same order as `members`); absent for signature groups. */
  distances?: readonly number[];
}

/** The largest k tried unless told otherwise. */
export const DEFAULT_MAX_K = 12;

export interface KMeansOptions {
  seed: number;
  /** Smallest and largest k tried (defaults 2 and 12). */
  minK?: number;
  maxK?: number;
  /** Points used to choose k (default 1,000): k-means and silhouettes run on a seeded sample of this size. */
  sampleSize?: number;
}

export interface KMeansClustering {
  k: number;
  /** Cluster index of each point. */
  assignments: number[];
  /** Euclidean distance of each point to its centroid. */
  distances: number[];
  /** Mean silhouette per k tried, in order of k; empty when there was nothing to choose. */
  silhouettes: { k: number; silhouette: number }[];
}

function squaredDistance(left: readonly number[], right: readonly number[]): number {
  let sum = 0;
  for (let index = 0; index < left.length; index++) {
    const difference = (left[index] ?? 0) - (right[index] ?? 0);
    sum += difference * difference;
  }
  return sum;
}

/**
 * Mean silhouette of a labelling, from a precomputed distance matrix: for each point, (b − a) / max(a, b) where a is
 * its mean distance to its own cluster and b to the nearest other one. Points alone in their cluster count 0.
 */
export function meanSilhouette(distanceMatrix: readonly Float64Array[], labels: readonly number[], k: number): number {
  const count = labels.length;
  if (count === 0 || k < 2) return 0;
  const sizes = new Array<number>(k).fill(0);
  for (const label of labels) sizes[label] = (sizes[label] ?? 0) + 1;
  let total = 0;
  const sums = new Float64Array(k);
  for (let point = 0; point < count; point++) {
    const own = labels[point] ?? 0;
    if ((sizes[own] ?? 0) <= 1) continue;
    sums.fill(0);
    const row = distanceMatrix[point] as Float64Array;
    for (let other = 0; other < count; other++) {
      const label = labels[other] ?? 0;
      sums[label] = (sums[label] ?? 0) + (row[other] ?? 0);
    }
    const a = (sums[own] ?? 0) / ((sizes[own] ?? 1) - 1);
    let b = Number.POSITIVE_INFINITY;
    for (let cluster = 0; cluster < k; cluster++) {
      if (cluster === own || (sizes[cluster] ?? 0) === 0) continue;
      b = Math.min(b, (sums[cluster] ?? 0) / (sizes[cluster] ?? 1));
    }
    if (!Number.isFinite(b)) continue;
    const larger = Math.max(a, b);
    total += larger === 0 ? 0 : (b - a) / larger;
  }
  return total / count;
}

/** Indices of a seeded sample of `size` points out of `count`, in ascending order. */
function samplePoints(count: number, size: number, seed: number): number[] {
  const indices = Array.from({ length: count }, (_, index) => index);
  if (count <= size) return indices;
  const random = seededRandom(seed);
  for (let index = 0; index < size; index++) {
    const swap = index + Math.floor(random() * (count - index));
    [indices[index], indices[swap]] = [indices[swap] as number, indices[index] as number];
  }
  return indices.slice(0, size).sort((left, right) => left - right);
}

/**
 * k-means with k chosen from the data: for each k in range, k-means (k-means++ start, seeded) on a seeded sample, and
 * the k with the best mean silhouette wins (ties: the smaller k). The chosen k is then fitted on all points. Points
 * should be distinct (mine passes one point per distinct failure text); with fewer than three there is nothing to
 * choose and all points form one cluster.
 */
export function clusterByKMeans(points: readonly ArrayLike<number>[], options: KMeansOptions): KMeansClustering {
  const data = points.map((point) => Array.from(point));
  const count = data.length;
  const minK = Math.max(2, options.minK ?? 2);
  const maxK = Math.min(options.maxK ?? DEFAULT_MAX_K, count - 1);
  if (count < 3 || maxK < minK) {
    const centre = meanOf(data);
    return {
      k: count === 0 ? 0 : 1,
      assignments: data.map(() => 0),
      distances: data.map((point) => Math.sqrt(squaredDistance(point, centre))),
      silhouettes: [],
    };
  }

  const sample = samplePoints(count, options.sampleSize ?? 1000, options.seed).map((index) => data[index] as number[]);
  const distanceMatrix = sample.map((left) => {
    const row = new Float64Array(sample.length);
    for (let index = 0; index < sample.length; index++) {
      row[index] = Math.sqrt(squaredDistance(left, sample[index] as number[]));
    }
    return row;
  });
  const silhouettes: { k: number; silhouette: number }[] = [];
  let best = { k: minK, silhouette: Number.NEGATIVE_INFINITY };
  for (let k = minK; k <= Math.min(maxK, sample.length - 1); k++) {
    const result = kmeans(sample, k, { seed: options.seed, initialization: 'kmeans++' });
    const silhouette = meanSilhouette(distanceMatrix, result.clusters, k);
    silhouettes.push({ k, silhouette });
    if (silhouette > best.silhouette + 1e-12) best = { k, silhouette };
  }

  const final = kmeans(data, best.k, { seed: options.seed, initialization: 'kmeans++' });
  return {
    k: best.k,
    assignments: final.clusters,
    distances: data.map((point, index) =>
      Math.sqrt(squaredDistance(point, final.centroids[final.clusters[index] ?? 0] ?? point)),
    ),
    silhouettes,
  };
}

function meanOf(points: readonly number[][]): number[] {
  const first = points[0];
  if (!first) return [];
  const centre = new Array<number>(first.length).fill(0);
  for (const point of points) {
    for (let index = 0; index < centre.length; index++) centre[index] = (centre[index] ?? 0) + (point[index] ?? 0);
  }
  return centre.map((value) => value / points.length);
}

/**
 * The paper's exact signature of a failure: its mechanism, plus the diagnosis's terminal cause and criticality when
 * an LLM diagnosis exists. Equal signatures form one group.
 */
export function signatureOf(failure: Failure): string {
  if (!failure.diagnosis) return failure.mechanism;
  const cause = failure.diagnosis.terminalCause.trim().toLowerCase().replace(/\s+/g, ' ');
  return `${failure.mechanism} | ${cause} | ${failure.diagnosis.criticality}`;
}

/** Groups failures by exact signature, in order of signature. */
export function groupBySignature(failures: readonly Failure[]): FailureGroup[] {
  const groups = new Map<string, number[]>();
  failures.forEach((failure, index) => {
    const key = signatureOf(failure);
    const members = groups.get(key) ?? [];
    members.push(index);
    groups.set(key, members);
  });
  return [...groups.entries()]
    .sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0))
    .map(([key, members]) => ({ key, members }));
}

/**
 * Groups failures by k-means over their texts' vectors. Failures with the same text share a point (`pointOf[i]` is
 * failure i's point), so a text repeated in a thousand runs does not outweigh the rest.
 */
export function groupByKMeans(
  failureCount: number,
  pointOf: readonly number[],
  points: readonly ArrayLike<number>[],
  options: KMeansOptions,
): { groups: FailureGroup[]; clustering: KMeansClustering } {
  const clustering = clusterByKMeans(points, options);
  const members = new Map<number, { members: number[]; distances: number[] }>();
  for (let failure = 0; failure < failureCount; failure++) {
    const point = pointOf[failure] ?? 0;
    const cluster = clustering.assignments[point] ?? 0;
    const group = members.get(cluster) ?? { members: [], distances: [] };
    group.members.push(failure);
    group.distances.push(clustering.distances[point] ?? 0);
    members.set(cluster, group);
  }
  const groups = [...members.entries()]
    .sort(([left], [right]) => left - right)
    .map(([cluster, group]) => ({ key: `k${cluster}`, ...group }));
  return { groups, clustering };
}

export interface SupportRule {
  /** Distinct failed runs a cluster needs (default 2). */
  minRuns: number;
  /** Distinct tasks a cluster needs (default 2). */
  minTasks: number;
}

export const DEFAULT_SUPPORT: SupportRule = { minRuns: 2, minTasks: 2 };

/**
 * Keeps the groups that recur: failures from at least `minRuns` runs across at least `minTasks` tasks. A pattern seen
 * in one run, or only ever on one task, is that task's quirk, not a weakness of the harness.
 */
export function applySupportRule(
  groups: readonly FailureGroup[],
  failures: readonly Failure[],
  rule: SupportRule = DEFAULT_SUPPORT,
): { kept: FailureGroup[]; dropped: { groups: number; failures: number } } {
  const kept: FailureGroup[] = [];
  let droppedFailures = 0;
  for (const group of groups) {
    const runs = new Set(group.members.map((index) => failures[index]?.runId));
    const tasks = new Set(group.members.map((index) => failures[index]?.task));
    if (runs.size >= rule.minRuns && tasks.size >= rule.minTasks) kept.push(group);
    else droppedFailures += group.members.length;
  }
  return { kept, dropped: { groups: groups.length - kept.length, failures: droppedFailures } };
}
