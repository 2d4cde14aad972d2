export { createOracleAgent, ORACLE_MODEL } from './oracle.js';
export {
  createBatchId,
  deriveTrialSeed,
  modelFailure,
  type RunTrialsOptions,
  type RunTrialsResult,
  readVerdict,
  runEndEvent,
  runTrials,
  runVerifyEvent,
  type TrialOutcomeName,
  type TrialProgress,
  type TrialResult,
  trialRunId,
} from './runner.js';
export {
  findBubblewrap,
  openSandbox,
  Sandbox,
  SandboxError,
  type SandboxOptions,
  SandboxWorkspace,
  TrialSandbox,
  WORKSPACE_PATH,
} from './sandbox.js';
export {
  DEFAULT_SUITE_ROOT,
  loadSuite,
  loadTask,
  SPLITS,
  type Split,
  SUITE_DATASET,
  type Suite,
  selectTasks,
  splitSolutionSteps,
  type Task,
} from './suite.js';
export { summarizeTrials, type TrialSummary, type TrialSummaryRow } from './summary.js';
