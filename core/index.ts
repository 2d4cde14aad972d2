export { Database, type Row, type SqlValue } from './database.js';
export { describeEnvironmentFailure, InputError, SelfharnessError, SystemError, UserError } from './errors.js';
export {
  type AppendOptions,
  type AppendResult,
  EventLog,
  type RejectedRecord,
  type StagedEvent,
  stageTraceEvent,
  stagingRoot,
} from './event-log.js';
export * from './events.js';
export { rebuildProjections, updateProjections } from './projections.js';
export { seededRandom } from './random.js';
export { PROJECTION_TABLES, type ProjectionTable } from './schema.js';
export { createStagingFolder } from './scratch.js';
export type { StagingBatch } from './staging.js';
