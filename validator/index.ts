/**
 * The validator's public surface: shadow replay of candidates against the log, the acceptance gate, and promotion
 * with rollback. Fresh paired trials and the improve loop build on these.
 */
export {
  type DecisionInput,
  decisionEvent,
  listValidations,
  recordDecision,
  type ValidationDecision,
  type ValidationRecord,
  type ValidationStage,
} from './decisions.js';
export {
  FORK_DATASET,
  type ForkOptions,
  type ForkResult,
  forkRun,
  prefixTurns,
  ReplayThenLiveModel,
} from './fork.js';
export {
  evaluateGate,
  type GateMetrics,
  type GateMode,
  type GateOptions,
  type GateResult,
  type GateSplit,
  gateDecisionInput,
  pairTrials,
  reliableRegressions,
  type SplitMetrics,
  type TaskRegression,
  type TrialPair,
  type TrialRecord,
  type TrialVerdict,
} from './gate.js';
export {
  type CandidateOutcome,
  defaultJobId,
  type ImproveOptions,
  type ImproveResult,
  type IterationReport,
  improve,
  type RateCell,
  type SplitRates,
  selectSplitTasks,
  summarizePatch,
} from './improve.js';
export {
  buildTurns,
  type LoggedCall,
  type LoggedRun,
  type LoggedTest,
  type LoggedTurn,
  loadLoggedRuns,
  type RunQuery,
} from './logged-run.js';
export {
  type AcceptedEdit,
  acceptedEdits,
  changelogOf,
  currentHarness,
  HEAD_STREAM,
  listPromotions,
  type MergeConflict,
  type MergePlan,
  type PromotionRecord,
  type PromotionResult,
  planMerge,
  promoteAccepted,
  promotionEvent,
  resolveHarness,
  rollbackHarness,
  touchedPaths,
} from './promote.js';
export { listProposals, loadProposal, type Proposal } from './proposals.js';
export {
  type Intervention,
  type InterventionKind,
  invocationOf,
  type ShadowOptions,
  type ShadowTrace,
  shadowReplay,
} from './replay.js';
export {
  type CandidateReplay,
  candidateOfProposal,
  loadTargetMembers,
  type ReplayCandidate,
  type ReplayCandidateOptions,
  replayCandidate,
} from './replay-candidate.js';
export { renderHtmlReport, renderMarkdownReport } from './report.js';
export {
  type FiringSummary,
  lastStep,
  type ReplaySummary,
  type ScreeningOptions,
  type ScreeningVerdict,
  screenReplay,
  summarizeReplay,
  type TargetSummary,
  type TargetTrace,
} from './screening.js';
export { SHADOW_APPROXIMATIONS } from './shadow-middleware.js';
export {
  binomialUpperTail,
  clusterBootstrapInterval,
  exactMcNemar,
  type McNemarResult,
} from './statistics.js';
export {
  attemptBatchSeed,
  checkJobId,
  type JobTrial,
  type JobTrialRun,
  type PairedTrialsResult,
  passRates,
  planTrialSet,
  readJobTrialRuns,
  runPairedTrials,
  runTrialSet,
  type TrialRunOptions,
  type TrialSet,
  type TrialSetProgress,
  type TrialSetResult,
  toRecords,
  trialBatchId,
  trialKey,
} from './trials.js';
