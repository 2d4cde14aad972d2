/**
 * The public surface of analytics: the analyst views and detector macros (installed into a database by
 * `installAnalytics`), and the typed detector API. Mining, diagnosis, embeddings, clustering and profiles
 * too.
 */

export {
  applySupportRule,
  clusterByKMeans,
  DEFAULT_MAX_K,
  DEFAULT_SUPPORT,
  type EvidenceCall,
  type Failure,
  type FailureDiagnosis,
  type FailureGroup,
  groupByKMeans,
  groupBySignature,
  type KMeansClustering,
  type SupportRule,
  signatureOf,
} from './clustering.js';
export {
  DETECTOR_MACROS,
  type Detection,
  type DetectOptions,
  type DetectorThresholds,
  defaultThresholds,
  detectMechanisms,
  isMechanism,
  type Mechanism,
  mechanisms,
} from './detectors.js';
export { type DiagnoseOptions, type DiagnoseSummary, diagnoseRuns, loadRunDigest } from './diagnosis.js';
export {
  contentHash,
  createEmbedder,
  EMBEDDER_CHOICES,
  type Embedder,
  embedWithCache,
  OpenAiEmbedder,
  TransformersEmbedder,
  UseLiteEmbedder,
} from './embedding/index.js';
export { type Llm, type LlmConfig, OpenAiLlm, readLlmConfig } from './llm.js';
export { failureText, type MineOptions, type MineProgress, type MiningResult, mineWeaknesses } from './mine.js';
export { buildProfiles, computeProfiles, type ModelProfiles, type ProfileOptions } from './profiles.js';
export {
  buildClusterCards,
  type ClusterCard,
  type EvidenceExcerpt,
  type MiningMode,
  mechanismTitle,
  type PassingRun,
} from './ranking.js';
export {
  analyticsVersion,
  installAnalytics,
  MINING_TABLE_NAMES,
  MINING_TABLES,
  prepareAnalytics,
} from './schema.js';
export {
  benjaminiHochbergAdjust,
  chiSquareTest,
  exactProportionsTest,
  fisherExactTest,
  holmAdjust,
  rateDifferenceInterval,
  wilsonInterval,
} from './statistics.js';
export { classifiedToolCalls, VIEW_NAMES } from './views.js';
