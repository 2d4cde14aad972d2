import { createHash } from 'node:crypto';
import { mineWeaknesses } from '../analytics/mine.js';
import { type EventLog, type PatchOperation, UserError } from '../core/index.js';
import {
  applySpecPatch,
  diffJson,
  ensureDefaultVersion,
  type HarnessVersion,
  registerVersion,
} from '../harness/index.js';
import {
  buildBrief,
  type Proposer,
  type RejectedCandidate,
  recordProposals,
  recordRejectedProposals,
} from '../proposer/index.js';
import { DEFAULT_SUITE_ROOT, loadSuite, type Split, type Suite, type Task } from '../tasks/index.js';
import { listValidations, recordDecision, type ValidationRecord } from './decisions.js';
import { evaluateGate, type GateMode, type GateResult, gateDecisionInput } from './gate.js';
import {
  acceptedEdits,
  changelogOf,
  currentHarness,
  listPromotions,
  planMerge,
  promoteAccepted,
  resolveHarness,
} from './promote.js';
import { listProposals, type Proposal } from './proposals.js';
import { candidateOfProposal, replayCandidate } from './replay-candidate.js';
import {
  checkJobId,
  type JobTrial,
  passRates,
  runPairedTrials,
  runTrialSet,
  type TrialRunOptions,
  type TrialSetProgress,
} from './trials.js';

/**
 * The self-improvement loop of one agent model: baseline trials of the current harness (held-in and held-out) →
 * mine the held-in failures → propose K edits → screen them by shadow replay → paired trials of the survivors against
 * the base → the gate → merge the accepted edits, re-validate the merge with trials and promote it → repeat. The
 * sealed split runs only at the end, for the report.
 *
 * Everything it decides is an event (proposals, decisions, promotions, trials), so the loop resumes from the log: a
 * job killed at any point and started again with the same job id reuses its proposals, decisions and finished trials
 * and reaches the same decisions. The harness head is one per database: improve one model per database.
 */

export interface ImproveOptions {
  /** `sim:PROFILE` or `openai:MODEL`. */
  readonly model: string;
  readonly iterations: number;
  /** Candidates asked of the proposer per iteration. */
  readonly candidates: number;
  readonly proposer: Proposer;
  readonly gate?: GateMode;
  readonly attempts?: number;
  readonly concurrency?: number;
  readonly seed?: number;
  /** Default: derived from the model and the options that change results (see `defaultJobId`). */
  readonly jobId?: string;
  /** The task suite (default: the bundled one). */
  readonly suite?: Suite;
  /** Task ids per split to use instead of the whole split (the improve loop's subsets). */
  readonly taskIds?: Partial<Record<Split, readonly string[]>>;
  /** Screening: a candidate firing on more than this share of passing runs is screened out (default 0.5). */
  readonly maxPassingFireRate?: number;
  /** Clusters shown to the proposer (default 5). */
  readonly top?: number;
  /** Run the sealed split for the final report (default true). */
  readonly sealed?: boolean;
  readonly trials?: Omit<TrialRunOptions, 'onProgress' | 'concurrency'>;
  /** Milestones, one line each (the CLI prints them on stderr). */
  readonly onLog?: (line: string) => void;
  /** Trial progress (the CLI rewrites one line). */
  readonly onTrials?: (progress: TrialSetProgress & { readonly label: string }) => void;
  /** Each step of the loop as it starts (the HTTP API shows it as the job's phase). */
  readonly onPhase?: (phase: ImprovePhase) => void;
  /**
   * Stops the job: running trials are interrupted (and logged as unfinished), and the loop stops before its next
   * step, throwing a `UserError`. Everything done so far is in the log; the same job id continues from there.
   */
  readonly signal?: AbortSignal;
}

/** The steps of the loop, in the order an iteration goes through them; `final` is the report's closing trials. */
export type ImprovePhaseName =
  | 'starting'
  | 'baseline'
  | 'mining'
  | 'proposing'
  | 'screening'
  | 'gate'
  | 'merge'
  | 'result'
  | 'sealed'
  | 'final';

/** A step of the loop as it starts: which one, in which iteration, and a line that says what it does. */
export interface ImprovePhase {
  readonly phase: ImprovePhaseName;
  readonly iteration?: number;
  readonly message: string;
}

export interface SplitRates {
  readonly heldIn?: RateCell;
  readonly heldOut?: RateCell;
  readonly sealed?: RateCell;
}

export interface RateCell {
  readonly passed: number;
  readonly valid: number;
  /** Percent. */
  readonly rate: number;
}

export interface CandidateOutcome {
  readonly proposalId: string;
  readonly clusterId?: string;
  readonly mechanism?: string;
  readonly surface: string;
  readonly patch: readonly PatchOperation[];
  readonly expectedEffect: string;
  readonly risk: string;
  readonly versionId?: string;
  readonly screening: { readonly decision: string; readonly reasons: readonly string[] };
  /** Absent when screened out (no trials ran for it). */
  readonly gate?: {
    readonly decision: 'accepted' | 'rejected';
    readonly reasons: readonly string[];
    readonly heldIn: GateResult['metrics']['heldIn'];
    readonly heldOut: GateResult['metrics']['heldOut'];
    readonly pOneSided: number;
  };
  /** The merge decision, when it came to one. */
  readonly merge?: { readonly decision: string; readonly reasons: readonly string[] };
}

export interface IterationReport {
  readonly iteration: number;
  readonly baseVersionId: string;
  /** Weakness clusters mined for the proposer (absent when the proposals came from the log). */
  readonly clusters?: number;
  readonly candidates: readonly CandidateOutcome[];
  /** What the proposer offered that failed the proposal checks. */
  readonly rejectedProposals: readonly RejectedCandidate[];
  readonly merge?: {
    readonly versionId: string;
    readonly proposalIds: readonly string[];
    readonly validation: { readonly decision: 'accepted' | 'rejected'; readonly reasons: readonly string[] };
    readonly promoted: boolean;
    readonly changelog: string;
  };
  /** The harness after the iteration (the base when nothing was promoted). */
  readonly resultVersionId: string;
  /** JSON Patch from the base to the result. */
  readonly diff: readonly PatchOperation[];
  readonly before: SplitRates;
  readonly after: SplitRates;
}

export interface ImproveResult {
  readonly jobId: string;
  readonly model: string;
  readonly proposer: string;
  readonly gate: GateMode;
  readonly attempts: number;
  readonly seed: number;
  readonly tasks: Readonly<Record<Split, readonly string[]>>;
  readonly initialVersionId: string;
  readonly finalVersionId: string;
  readonly iterations: readonly IterationReport[];
  readonly before: SplitRates;
  readonly after: SplitRates;
  /** Accepted edits merged into the final harness, oldest first. */
  readonly acceptedEdits: readonly { proposalId: string; mechanism?: string; surface: string; summary: string }[];
  /** Runs started by this call (0 when everything came from the log). */
  readonly trialsRun: number;
  readonly durationMs: number;
}

/**
 * The default job id: the model and every option that changes results (proposer, candidates, gate, attempts, seed,
 * tasks), so running the same command again continues the same job. The iteration count is left out, so a job can be
 * continued with more iterations.
 */
export function defaultJobId(input: {
  model: string;
  proposer: string;
  candidates: number;
  gate: GateMode;
  attempts: number;
  seed: number;
  tasks: Readonly<Record<Split, readonly string[]>>;
}): string {
  const digest = createHash('sha256').update(JSON.stringify(input)).digest('hex').slice(0, 8);
  const slug = input.model
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  return `improve-${slug}-${digest}`;
}

/** The tasks of each split, or the chosen subsets (each id must belong to its split). */
export function selectSplitTasks(
  suite: Suite,
  taskIds: Partial<Record<Split, readonly string[]>> = {},
): Record<Split, Task[]> {
  const pick = (split: Split): Task[] => {
    const inSplit = suite.tasks.filter((task) => task.split === split);
    const wanted = taskIds[split];
    if (wanted === undefined) return inSplit;
    return wanted.map((id) => {
      const task = inSplit.find((candidate) => candidate.id === id);
      if (!task)
        throw new UserError(
          `Task ${id} is not in the ${split} split of ${suite.root}: choose from ${inSplit.map((entry) => entry.id).join(', ')}.`,
        );
      return task;
    });
  };
  return { 'held-in': pick('held-in'), 'held-out': pick('held-out'), sealed: pick('sealed') };
}

function cell(rates: ReturnType<typeof passRates>, split: string): RateCell | undefined {
  const entry = rates[split];
  return entry ? { passed: entry.passed, valid: entry.valid, rate: entry.rate } : undefined;
}

function splitRates(trials: readonly JobTrial[], sealed?: readonly JobTrial[]): SplitRates {
  const rates = passRates([...trials, ...(sealed ?? [])]);
  const heldIn = cell(rates, 'held-in');
  const heldOut = cell(rates, 'held-out');
  const sealedCell = cell(rates, 'sealed');
  return {
    ...(heldIn ? { heldIn } : {}),
    ...(heldOut ? { heldOut } : {}),
    ...(sealedCell ? { sealed: sealedCell } : {}),
  };
}

const latest = (decisions: readonly ValidationRecord[], proposalId: string, stage: ValidationRecord['stage']) =>
  decisions.filter((decision) => decision.proposalId === proposalId && decision.stage === stage).at(-1);

/** A one-line description of a patch, for tables. */
export function summarizePatch(patch: readonly PatchOperation[]): string {
  return patch
    .map((operation) => {
      const value = operation.value;
      if (value && typeof value === 'object' && 'name' in value)
        return `${operation.op} ${operation.path}: ${(value as { name: string }).name}`;
      if (value && typeof value === 'object' && 'id' in value)
        return `${operation.op} ${operation.path}: rule ${(value as { id: string }).id}`;
      if (typeof value === 'string')
        return `${operation.op} ${operation.path}: "${value.length > 60 ? `${value.slice(0, 59)}…` : value}"`;
      if (value !== undefined) return `${operation.op} ${operation.path}: ${JSON.stringify(value)}`;
      return `${operation.op} ${operation.path}`;
    })
    .join('; ');
}

/** Runs (or continues) an improve job and returns what its report shows. */
export async function improve(log: EventLog, options: ImproveOptions): Promise<ImproveResult> {
  const started = Date.now();
  const gate = options.gate ?? 'strict';
  const attempts = options.attempts ?? 2;
  const seed = options.seed ?? 1;
  const suite = options.suite ?? loadSuite(DEFAULT_SUITE_ROOT);
  const splits = selectSplitTasks(suite, options.taskIds);
  for (const split of ['held-in', 'held-out'] as const)
    if (splits[split].length === 0)
      throw new UserError(`The ${split} split has no tasks: improve needs held-in and held-out tasks.`);
  const taskIds = {
    'held-in': splits['held-in'].map((task) => task.id),
    'held-out': splits['held-out'].map((task) => task.id),
    sealed: splits.sealed.map((task) => task.id),
  };
  const jobId = checkJobId(
    options.jobId ??
      defaultJobId({
        model: options.model,
        proposer: options.proposer.name,
        candidates: options.candidates,
        gate,
        attempts,
        seed,
        tasks: taskIds,
      }),
  );
  const say = (line: string) => options.onLog?.(line);
  const signal = options.signal ?? options.trials?.signal;
  /** Starts a step: stops first when the job was interrupted, then reports the step (and logs its line). */
  const enter = (phase: ImprovePhaseName, iteration: number | undefined, message: string, logged = true) => {
    if (signal?.aborted)
      throw new UserError(
        `Interrupted before the ${phase} step of improve job ${jobId}: everything done so far is in the log; run the same job again to continue.`,
      );
    options.onPhase?.({ phase, ...(iteration !== undefined ? { iteration } : {}), message });
    if (logged) say(message);
  };
  const gatedTasks = [...splits['held-in'], ...splits['held-out']];
  let trialsRun = 0;
  const trialOptions = (label: string): TrialRunOptions => ({
    ...options.trials,
    ...(signal ? { signal } : {}),
    concurrency: options.concurrency ?? 2,
    onProgress: (progress) => options.onTrials?.({ ...progress, label }),
  });
  const versionTrials = async (versionId: string, tasks: readonly Task[], label: string) => {
    const result = await runTrialSet(
      log,
      { jobId, model: options.model, versionId, tasks, attempts, seed },
      trialOptions(label),
    );
    trialsRun += result.ran;
    return result.trials;
  };
  /** Base and candidate on the held-in and held-out tasks with the same attempts and seeds, judged by the gate. */
  const gateAgainst = async (baseVersionId: string, candidateVersionId: string, label: string) => {
    const paired = await runPairedTrials(
      log,
      { jobId, model: options.model, tasks: gatedTasks, attempts, seed, baseVersionId, candidateVersionId },
      trialOptions(label),
    );
    trialsRun += paired.ran;
    return evaluateGate(paired.pairs, { mode: gate });
  };

  enter(
    'starting',
    undefined,
    `improve job ${jobId}: model ${options.model}, ${options.iterations} iterations, ${options.candidates} candidates, gate ${gate}, ${attempts} attempts, seed ${seed}`,
  );
  await ensureDefaultVersion(log);
  const iterations: IterationReport[] = [];
  let initialVersion: HarnessVersion | undefined;
  for (let iteration = 1; iteration <= options.iterations; iteration++) {
    const ownProposals = (await listProposals(log)).filter(
      (proposal) => proposal.jobId === jobId && proposal.iteration === iteration,
    );
    const base = ownProposals[0]
      ? await resolveHarness(log, ownProposals[0].baseVersionId)
      : (await currentHarness(log)).version;
    initialVersion ??= base;
    enter(
      'baseline',
      iteration,
      `iteration ${iteration}: base harness ${base.versionId}; baseline trials (held-in ${splits['held-in'].length}, held-out ${splits['held-out'].length} tasks × ${attempts})`,
    );
    const baseTrials = await versionTrials(
      base.versionId,
      gatedTasks,
      `iteration ${iteration} baseline ${base.versionId}`,
    );

    // Propose, unless this iteration already did (then its proposals are in the log).
    let proposals: Proposal[] = ownProposals;
    let rejectedProposals: RejectedCandidate[] = [];
    let clusterCount: number | undefined;
    if (proposals.length === 0) {
      enter('mining', iteration, `iteration ${iteration}: mining held-in failures of ${options.model}`);
      const mining = await mineWeaknesses(log, { mode: 'signature', model: options.model, split: 'held-in' });
      clusterCount = mining.clusters.length;
      const brief = await buildBrief(log, {
        baseVersion: base,
        clusters: mining.clusters,
        splitsShown: ['held-in'],
        top: options.top ?? 5,
      });
      enter(
        'proposing',
        iteration,
        `iteration ${iteration}: ${mining.clusters.length} weakness clusters; asking ${options.proposer.name} for ${options.candidates} candidates`,
      );
      const result = await options.proposer.propose(brief, { count: options.candidates });
      const recordOptions = { baseVersionId: base.versionId, proposer: options.proposer.name, jobId, iteration };
      await recordProposals(log, result.candidates, recordOptions);
      await recordRejectedProposals(log, result.rejected, recordOptions);
      rejectedProposals = result.rejected;
      const ids = new Set(result.candidates.map((candidate) => candidate.proposalId));
      // A candidate proposed before (by another job) keeps its first record; it still belongs to this iteration.
      proposals = (await listProposals(log)).filter((proposal) => ids.has(proposal.proposalId));
    }
    enter(
      'screening',
      iteration,
      `iteration ${iteration}: ${proposals.length} candidate${proposals.length === 1 ? '' : 's'}${rejectedProposals.length > 0 ? ` (${rejectedProposals.length} rejected by the proposal checks)` : ''}`,
    );

    // Screen by shadow replay; only survivors get trials.
    const outcomes: CandidateOutcome[] = [];
    for (const proposal of proposals) {
      const decisions = await listValidations(log, proposal.proposalId);
      let screening = latest(decisions, proposal.proposalId, 'replay');
      if (!screening) {
        const replay = await replayCandidate(log, candidateOfProposal(proposal), {
          ...(options.maxPassingFireRate !== undefined ? { maxPassingFireRate: options.maxPassingFireRate } : {}),
        });
        screening = {
          seq: 0,
          proposalId: proposal.proposalId,
          stage: 'replay',
          decision: replay.verdict.screenedOut ? 'screened-out' : 'accepted',
          reasons: replay.verdict.reasons,
          metrics: replay.verdict.metrics,
        };
      }
      const applied = applySpecPatch(base.spec, proposal.patch);
      const outcome: CandidateOutcome = {
        proposalId: proposal.proposalId,
        ...(proposal.clusterId !== undefined ? { clusterId: proposal.clusterId } : {}),
        ...(proposal.mechanism !== undefined ? { mechanism: proposal.mechanism } : {}),
        surface: proposal.surface,
        patch: proposal.patch,
        expectedEffect: proposal.expectedEffect,
        risk: proposal.risk,
        screening: { decision: screening.decision, reasons: screening.reasons },
      };
      say(
        `iteration ${iteration}: ${proposal.proposalId} (${summarizePatch(proposal.patch)}) ${screening.decision === 'accepted' ? 'screened in' : 'screened out'}: ${screening.reasons.join(' ')}`,
      );
      if (screening.decision !== 'accepted' || !applied.ok) {
        outcomes.push(outcome);
        continue;
      }
      enter(
        'gate',
        iteration,
        `iteration ${iteration}: paired trials of ${proposal.proposalId} against ${base.versionId} for the ${gate} gate`,
        false,
      );
      const { version } = await registerVersion(log, applied.spec, {
        parentId: base.versionId,
        description: `Candidate ${proposal.proposalId}: ${summarizePatch(proposal.patch)}`,
      });
      const result = await gateAgainst(
        base.versionId,
        version.versionId,
        `iteration ${iteration} candidate ${proposal.proposalId}`,
      );
      await recordDecision(log, gateDecisionInput(proposal.proposalId, result));
      say(
        `iteration ${iteration}: ${proposal.proposalId} ${result.decision} by the ${gate} gate: Δheld-in ${formatDelta(result.metrics.heldIn.deltaPoints)}, Δheld-out ${formatDelta(result.metrics.heldOut.deltaPoints)}`,
      );
      outcomes.push({
        ...outcome,
        versionId: version.versionId,
        gate: {
          decision: result.decision,
          reasons: result.reasons,
          heldIn: result.metrics.heldIn,
          heldOut: result.metrics.heldOut,
          pOneSided: result.metrics.pOneSided,
        },
      });
    }

    // Merge the accepted edits, re-validate the merge, promote.
    const ids = new Set(proposals.map((proposal) => proposal.proposalId));
    const edits = (await acceptedEdits(log, base.versionId)).filter((edit) => ids.has(edit.proposalId));
    let merge: IterationReport['merge'];
    if (edits.length > 0) {
      const plan = planMerge(base.spec, edits);
      const changelog = changelogOf(plan, base.versionId);
      const { version: merged } = await registerVersion(log, plan.spec, {
        parentId: base.versionId,
        description: changelog,
      });
      enter(
        'merge',
        iteration,
        `iteration ${iteration}: re-validating the merge of ${plan.merged.length} edit${plan.merged.length === 1 ? '' : 's'} as ${merged.versionId}`,
      );
      const validation = await gateAgainst(
        base.versionId,
        merged.versionId,
        `iteration ${iteration} merge ${merged.versionId}`,
      );
      let promotedEdits = edits;
      if (validation.decision === 'rejected') {
        const best = plan.merged[0];
        promotedEdits =
          best && plan.merged.length > 1 ? [edits.find((edit) => edit.proposalId === best.proposalId)!] : [];
        for (const edit of edits.filter((entry) => !promotedEdits.includes(entry)))
          await recordDecision(log, {
            proposalId: edit.proposalId,
            stage: 'merge',
            decision: 'rejected',
            reasons: [
              `The merge ${merged.versionId} of ${plan.merged.map((entry) => entry.proposalId).join(', ')} failed re-validation: ${validation.reasons[0] ?? ''}`,
            ],
            metrics: {
              versionId: merged.versionId,
              heldIn: validation.metrics.heldIn,
              heldOut: validation.metrics.heldOut,
            },
          });
      }
      let promoted = false;
      let promotedVersionId = merged.versionId;
      if (promotedEdits.length > 0) {
        const promotion = await promoteAccepted(log, { baseVersionId: base.versionId, edits: promotedEdits });
        promoted = promotion.version !== undefined;
        if (promotion.version) promotedVersionId = promotion.version.versionId;
      }
      say(
        `iteration ${iteration}: merge ${validation.decision} by re-validation${promoted ? `; harness ${promotedVersionId} is now current` : '; nothing promoted'}`,
      );
      merge = {
        versionId: promotedVersionId,
        proposalIds: promotedEdits.map((edit) => edit.proposalId),
        validation: { decision: validation.decision, reasons: validation.reasons },
        promoted,
        changelog,
      };
    } else {
      // A resumed job whose promotion is already in the log.
      const promotion = (await listPromotions(log)).find(
        (entry) =>
          entry.reason === 'promotion' &&
          entry.previousVersionId === base.versionId &&
          entry.proposalIds.some((proposalId) => ids.has(proposalId)),
      );
      if (promotion)
        merge = {
          versionId: promotion.versionId,
          proposalIds: promotion.proposalIds,
          validation: { decision: 'accepted', reasons: ['Re-validated and promoted earlier in this job.'] },
          promoted: true,
          changelog: promotion.changelog,
        };
    }

    const decisions = await listValidations(log);
    const withMerge = outcomes.map((outcome) => {
      const decision = latest(decisions, outcome.proposalId, 'merge');
      return decision ? { ...outcome, merge: { decision: decision.decision, reasons: decision.reasons } } : outcome;
    });
    const resultVersion = merge?.promoted ? await resolveHarness(log, merge.versionId) : base;
    enter(
      'result',
      iteration,
      `iteration ${iteration}: trials of the resulting harness ${resultVersion.versionId}`,
      false,
    );
    const afterTrials =
      resultVersion.versionId === base.versionId
        ? baseTrials
        : await versionTrials(
            resultVersion.versionId,
            gatedTasks,
            `iteration ${iteration} result ${resultVersion.versionId}`,
          );
    iterations.push({
      iteration,
      baseVersionId: base.versionId,
      ...(clusterCount !== undefined ? { clusters: clusterCount } : {}),
      candidates: withMerge,
      rejectedProposals,
      ...(merge ? { merge } : {}),
      resultVersionId: resultVersion.versionId,
      diff: diffJson(base.spec, resultVersion.spec),
      before: splitRates(baseTrials),
      after: splitRates(afterTrials),
    });
  }

  const initial = initialVersion ?? (await currentHarness(log)).version;
  const finalVersionId = iterations.at(-1)?.resultVersionId ?? initial.versionId;
  const runSealed = options.sealed !== false && splits.sealed.length > 0;
  if (runSealed)
    enter(
      'sealed',
      undefined,
      `final report: sealed split (${splits.sealed.length} tasks) with ${initial.versionId} and ${finalVersionId}`,
    );
  const sealedBefore = runSealed ? await versionTrials(initial.versionId, splits.sealed, 'sealed, before') : [];
  const sealedAfter =
    runSealed && finalVersionId !== initial.versionId
      ? await versionTrials(finalVersionId, splits.sealed, 'sealed, after')
      : sealedBefore;
  const first = iterations[0];
  const last = iterations.at(-1);
  enter(
    'final',
    undefined,
    `final report: held-in and held-out pass rates of ${initial.versionId} and ${finalVersionId}`,
    false,
  );
  const beforeTrials = first ? await versionTrials(initial.versionId, gatedTasks, 'before') : [];
  const afterTrials = last ? await versionTrials(finalVersionId, gatedTasks, 'after') : [];
  const accepted = iterations.flatMap((entry) =>
    entry.candidates
      .filter((candidate) => entry.merge?.promoted && entry.merge.proposalIds.includes(candidate.proposalId))
      .map((candidate) => ({
        proposalId: candidate.proposalId,
        ...(candidate.mechanism !== undefined ? { mechanism: candidate.mechanism } : {}),
        surface: candidate.surface,
        summary: summarizePatch(candidate.patch),
      })),
  );
  return {
    jobId,
    model: options.model,
    proposer: options.proposer.name,
    gate,
    attempts,
    seed,
    tasks: taskIds,
    initialVersionId: initial.versionId,
    finalVersionId,
    iterations,
    before: splitRates(beforeTrials, sealedBefore),
    after: splitRates(afterTrials, sealedAfter),
    acceptedEdits: accepted,
    trialsRun,
    durationMs: Date.now() - started,
  };
}

const formatDelta = (value: number) => `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(1)}`;
