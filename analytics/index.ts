/**
 * The public surface of analytics: the analyst views and detector macros (installed into a database by
 * `installAnalytics`), and the typed detector API. Mining, diagnosis, embeddings and profiles add their exports here.
 */
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
export {
  analyticsVersion,
  installAnalytics,
  MINING_TABLE_NAMES,
  MINING_TABLES,
  prepareAnalytics,
} from './schema.js';
export { classifiedToolCalls, VIEW_NAMES } from './views.js';
