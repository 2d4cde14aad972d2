/** The HTTP API: `createApp` builds the hono app over a log; `selfharness serve` runs it. */
export { type AppOptions, ARROW_STREAM_TYPE, createApp, DEFAULT_BODY_LIMIT_BYTES } from './app.js';
export { DEFAULT_IMPORT_LIMITS, type ImportLimits, type ImportReceipt } from './import.js';
export { openApiDocument } from './openapi.js';
export { HttpProblem, type Problem, toProblem } from './problem.js';
export {
  checkReadOnlyQuery,
  fetchReadOnlyQuery,
  MAX_ROW_LIMIT,
  type QueryResult,
  type ResultFormat,
  restrictServerFileAccess,
} from './sql.js';
