/** The HTTP API: `createApp` builds the hono app over a log; `selfharness serve` runs it. */
export { type AppOptions, createApp, DEFAULT_BODY_LIMIT_BYTES } from './app.js';
export { openApiDocument } from './openapi.js';
export { HttpProblem, type Problem, toProblem } from './problem.js';
export { checkReadOnlyQuery, MAX_ROW_LIMIT, type QueryResult, restrictServerFileAccess } from './sql.js';
