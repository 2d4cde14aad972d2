import { timingSafeEqual } from 'node:crypto';
import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { computeProfiles } from '../analytics/index.js';
import type { EventLog } from '../core/index.js';
import { diffJson, listVersions, resolveVersion } from '../harness/index.js';
import { ingestPaths } from '../ingest/ingest.js';
import { listProposals, listValidations } from '../validator/index.js';
import { registerCliRoute } from './cli-route.js';
import { registerDashboard } from './dashboard.js';
import { DEFAULT_IMPORT_LIMITS, fileNameFromDisposition, type ImportLimits, importUpload } from './import.js';
import { groupedAppends, prepareEvents, receiveArrowEvents, receiveTraces } from './ingest.js';
import { registerJobRoutes } from './jobs.js';
import { openApiDocument } from './openapi.js';
import { HttpProblem, type Problem, problem, toProblem } from './problem.js';
import { latestWeaknesses, listRuns, loadRun, toJsonValue } from './queries.js';
import type { RouteContext } from './routes.js';
import {
  DEFAULT_ROW_LIMIT,
  DEFAULT_TIMEOUT_MS,
  encodeResult,
  fetchReadOnlyQuery,
  MAX_ROW_LIMIT,
  type ResultFormat,
} from './sql.js';

export const DEFAULT_BODY_LIMIT_BYTES = 32 * 1024 * 1024;

export interface AppOptions {
  /** The log, opened for writing when events are to be received. */
  log: EventLog;
  /** When set, every request needs `Authorization: Bearer <token>`. */
  token?: string;
  /** The largest request body accepted (default 32 MiB). */
  bodyLimitBytes?: number;
  /** How long a `POST /v1/sql` query may run before it is interrupted (default 30 s). */
  sqlTimeoutMs?: number;
  /** How large a `POST /v1/import` archive may unpack (entries, bytes per file, bytes in all). */
  importLimits?: Partial<ImportLimits>;
}

/** The media type of Arrow IPC streams (`…arrow.file` is read too). */
export const ARROW_STREAM_TYPE = 'application/vnd.apache.arrow.stream';

const RESULT_TYPES: Record<ResultFormat, string> = {
  json: 'application/json; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  arrow: ARROW_STREAM_TYPE,
};

/**
 * The HTTP API over one log. Errors of every route become `application/problem+json` in one place (`onError`,
 * `notFound`). The log's DuckDB connection runs one statement at a time, and an append is a transaction on it, so
 * requests that use it take their turn one after another; `POST /v1/sql` runs each query on a connection of its own,
 * so reads never wait behind an import, and a timeout interrupts only that query.
 */
export function createApp(options: AppOptions): Hono {
  const { log } = options;
  const exclusive = createQueue();
  const app = new Hono();

  app.onError((error, context) => sendProblem(context, toProblem(error)));
  app.notFound((context) =>
    sendProblem(
      context,
      problem(404, `No route ${context.req.method} ${context.req.path}. GET /v1/openapi.json lists the routes.`),
    ),
  );

  // The dashboard's page and scripts hold no data; it asks for the token and sends it with each API call.
  registerDashboard(app);

  // Events posted in bulk are appended at once and their runs projected together: after a short while, or before
  // any other request (a read sees every event acknowledged before it, in `runs`, `steps` and `tool_calls` too).
  // Requests that arrive while the log is busy are appended together, in one transaction. The projections wait while
  // events keep coming: a request is under way, or one arrived less than `PROJECTION_DELAY_MS` ago.
  const appends = groupedAppends(log, exclusive, { deferProjections: true });
  let eventRequests = 0;
  let lastEventRequest = 0;
  const streaming = () => eventRequests > 0 || performance.now() - lastEventRequest < PROJECTION_DELAY_MS;
  const projections = coalescedProjections(log, exclusive, streaming);
  app.use('*', async (context, next) => {
    const appending = context.req.method === 'POST' && context.req.path === '/v1/events';
    if (!appending) await projections.flush();
    await next();
  });

  const shared: RouteContext = { log, exclusive };
  // The local CLI's route checks a token of its own (and loopback), whatever token the API has.
  registerCliRoute(app, shared);

  if (options.token !== undefined) {
    const expected = Buffer.from(`Bearer ${options.token}`);
    app.use('*', async (context, next) => {
      const given = Buffer.from(context.req.header('authorization') ?? '');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw new HttpProblem(
          401,
          'Unauthorized',
          'This server needs a token: send the header `Authorization: Bearer <token>` with the token it was started with.',
        );
      }
      await next();
    });
  }

  const limit = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  app.use(
    '*',
    bodyLimit({
      maxSize: limit,
      onError: () => {
        throw new HttpProblem(
          413,
          'Content Too Large',
          `The request body is larger than ${limit} bytes. Send the events in smaller batches (e.g. 10,000 lines per request).`,
        );
      },
    }),
  );

  app.get('/v1/openapi.json', (context) => context.json(openApiDocument()));

  app.post('/v1/events', async (context) => {
    if ((context.req.header('content-type') ?? '').includes('application/vnd.apache.arrow')) {
      const bytes = new Uint8Array(await context.req.arrayBuffer());
      return context.json(await exclusive(() => receiveArrowEvents(log, bytes, 'POST /v1/events')));
    }
    eventRequests++;
    lastEventRequest = performance.now();
    try {
      const body = new Uint8Array(await context.req.arrayBuffer());
      // Validated and staged before its turn, so the next requests are parsed while DuckDB appends the ones before.
      const prepared = prepareEvents(log, body, 'POST /v1/events');
      const receipt = await appends.append(prepared);
      projections.appended(receipt.accepted);
      return context.json(receipt);
    } finally {
      eventRequests--;
    }
  });

  const importLimits: ImportLimits = { ...DEFAULT_IMPORT_LIMITS, ...options.importLimits };
  app.post('/v1/import', async (context) => {
    const query = context.req.query();
    const name = query.name || fileNameFromDisposition(context.req.header('content-disposition'));
    const body = new Uint8Array(await context.req.arrayBuffer());
    const receipt = await importUpload(
      body,
      {
        ...(name ? { name } : {}),
        options: {
          ...(query.format ? { format: query.format } : {}),
          ...(query.model ? { model: query.model } : {}),
          ...(query.dataset ? { dataset: query.dataset } : {}),
        },
        limits: importLimits,
      },
      (path, ingestOptions) => exclusive(() => ingestPaths(log, [path], ingestOptions)),
    );
    return context.json(receipt);
  });

  app.post('/v1/traces', async (context) => {
    const type = context.req.header('content-type') ?? '';
    if (type.includes('protobuf')) {
      throw new HttpProblem(
        415,
        'Unsupported Media Type',
        'Only OTLP/HTTP JSON is accepted: configure the exporter with protocol http/json (OTEL_EXPORTER_OTLP_PROTOCOL=http/json).',
      );
    }
    const text = await context.req.text();
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch (error) {
      throw new HttpProblem(400, 'Bad Request', `The body is not OTLP JSON: ${(error as Error).message}`);
    }
    return context.json(await exclusive(() => receiveTraces(log, document, 'POST /v1/traces')));
  });

  app.post('/v1/sql', async (context) => {
    const request = await readSqlRequest(context);
    const result = await fetchReadOnlyQuery(log, request.sql, {
      limit: request.limit,
      timeoutMs: options.sqlTimeoutMs ?? DEFAULT_TIMEOUT_MS,
    });
    return context.body(streamPieces(encodeResult(result, request.format)), 200, {
      'Content-Type': RESULT_TYPES[request.format],
      'X-Truncated': String(result.truncated),
      'X-Row-Count': String(result.rowCount),
    });
  });

  app.get('/v1/runs', async (context) => {
    const query = context.req.query();
    const filters = {
      ...(query.model ? { model: query.model } : {}),
      ...(query.split ? { split: query.split } : {}),
      ...(query.outcome ? { outcome: query.outcome } : {}),
      limit: integerParameter(query.limit, 'limit', 100, 10_000),
      offset: integerParameter(query.offset, 'offset', 0, Number.MAX_SAFE_INTEGER),
    };
    const result = await exclusive(() => listRuns(log, filters));
    return context.json(toJsonValue(result) as object);
  });

  app.get('/v1/runs/:id', async (context) => {
    const runId = context.req.param('id');
    const run = await exclusive(() => loadRun(log, runId));
    if (!run) throw new HttpProblem(404, 'Not Found', `Unknown run ${runId}: list runs with GET /v1/runs.`);
    return context.json(toJsonValue(run) as object);
  });

  app.get('/v1/weaknesses', async (context) =>
    context.json(toJsonValue({ clusters: await exclusive(() => latestWeaknesses(log)) }) as object),
  );

  app.get('/v1/profiles', async (context) =>
    context.json(toJsonValue(await exclusive(() => computeProfiles(log))) as object),
  );

  app.get('/v1/harness/versions', async (context) =>
    context.json({ versions: await exclusive(() => listVersions(log)) }),
  );

  app.get('/v1/harness/versions/:a/diff/:b', async (context) => {
    const [before, after] = await exclusive(async () => [
      await resolveVersion(log, context.req.param('a'), { readOnly: true }),
      await resolveVersion(log, context.req.param('b'), { readOnly: true }),
    ]);
    return context.json({
      from: before.versionId,
      to: after.versionId,
      patch: diffJson(before.spec, after.spec),
    });
  });

  app.get('/v1/proposals', async (context) =>
    context.json({ proposals: toJsonValue(await exclusive(() => listProposals(log))) }),
  );

  app.get('/v1/validations', async (context) => {
    const proposal = context.req.query('proposal');
    return context.json({ validations: toJsonValue(await exclusive(() => listValidations(log, proposal))) });
  });

  registerJobRoutes(app, shared);

  return app;
}

function sendProblem(context: Context, body: Problem): Response {
  return context.body(JSON.stringify(body), body.status, { 'Content-Type': 'application/problem+json' });
}

/** A response body made piece by piece as the client reads it: a large result is never held whole as text. */
function streamPieces(pieces: Iterator<Uint8Array | string>): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = pieces.next();
      if (next.done) controller.close();
      else controller.enqueue(typeof next.value === 'string' ? Buffer.from(next.value) : next.value);
    },
    cancel() {
      pieces.return?.(undefined);
    },
  });
}

/**
 * The query and options of `POST /v1/sql`: a JSON body `{ sql, limit?, format? }` or the SQL as plain text; the format
 * from `?format=`, the body, or the Accept header (Arrow or CSV), JSON otherwise.
 */
async function readSqlRequest(context: Context): Promise<{ sql: string; limit: number; format: ResultFormat }> {
  const type = context.req.header('content-type') ?? '';
  let sql: unknown;
  let bodyLimit: unknown;
  let bodyFormat: unknown;
  if (type.includes('json')) {
    let body: unknown;
    try {
      body = await context.req.json();
    } catch (error) {
      throw new HttpProblem(400, 'Bad Request', `The body is not JSON: ${(error as Error).message}`);
    }
    const fields = (body ?? {}) as { sql?: unknown; limit?: unknown; format?: unknown };
    sql = fields.sql;
    bodyLimit = fields.limit;
    bodyFormat = fields.format;
  } else {
    sql = await context.req.text();
  }
  if (typeof sql !== 'string' || sql.trim() === '') {
    throw new HttpProblem(
      400,
      'Bad Request',
      'Send the query as JSON `{"sql": "SELECT …"}` (Content-Type: application/json) or as the plain-text body.',
    );
  }
  const limitText = context.req.query('limit') ?? (bodyLimit === undefined ? undefined : String(bodyLimit));
  const asked = context.req.query('format') ?? (typeof bodyFormat === 'string' ? bodyFormat : undefined);
  const accept = context.req.header('accept') ?? '';
  const format =
    asked ?? (accept.includes('application/vnd.apache.arrow') ? 'arrow' : accept.includes('text/csv') ? 'csv' : 'json');
  if (format !== 'json' && format !== 'csv' && format !== 'arrow') {
    throw new HttpProblem(400, 'Bad Request', `Unknown format=${format}: ask for json, csv or arrow.`);
  }
  return { sql, limit: integerParameter(limitText, 'limit', DEFAULT_ROW_LIMIT, MAX_ROW_LIMIT), format };
}

function integerParameter(text: string | undefined, name: string, fallback: number, maximum: number): number {
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > maximum) {
    throw new HttpProblem(400, 'Bad Request', `Parameter ${name}=${text} must be a whole number from 0 to ${maximum}.`);
  }
  return value;
}

/** How long after the last appended batch its projections are derived, when no other request asks for them first. */
const PROJECTION_DELAY_MS = 200;
/** Under a stream that never pauses, the projections are still derived once this many events wait for them. */
const PROJECTION_LAG_EVENTS = 1_000_000;

/**
 * Projections derived for many appended batches at once: `appended` schedules them (`PROJECTION_DELAY_MS` after the
 * last append, and later while `streaming` says more events are on their way), `flush` derives them now if any are
 * pending. A failure leaves them pending for the next try (and `open`).
 */
function coalescedProjections(
  log: EventLog,
  exclusive: <T>(task: () => Promise<T>) => Promise<T>,
  streaming: () => boolean,
): { appended: (events: number) => void; flush: () => Promise<void> } {
  let pending = false;
  let waitingEvents = 0;
  let timer: NodeJS.Timeout | undefined;
  // The latest derivation queued: a request that finds nothing pending still waits for one that is under way.
  let inFlight: Promise<void> = Promise.resolve();
  const flush = (): Promise<void> => {
    if (!pending) return inFlight;
    const task = exclusive(async () => {
      if (!pending) return;
      pending = false;
      waitingEvents = 0;
      try {
        await log.projectPending();
      } catch (error) {
        pending = true;
        throw error;
      }
    });
    inFlight = task.catch(() => undefined);
    return task;
  };
  // Under a steady stream of batches the projections wait for a pause (or a read), and are then derived at once.
  const schedule = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      if (streaming()) schedule();
      else flush().catch(() => undefined);
    }, PROJECTION_DELAY_MS);
    timer.unref();
  };
  const appended = (events: number) => {
    pending = true;
    waitingEvents += events;
    if (waitingEvents >= PROJECTION_LAG_EVENTS) flush().catch(() => undefined);
    else schedule();
  };
  return { appended, flush };
}

/** Runs tasks one after another, in the order they were queued; a failed task does not stop the ones after it. */
function createQueue(): <T>(task: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(task: () => Promise<T>): Promise<T> => {
    const result = tail.then(task);
    tail = result.catch(() => undefined);
    return result;
  };
}
