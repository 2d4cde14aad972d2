/**
 * The OpenAPI 3.1 description of every route, served at `GET /v1/openapi.json` so that clients and the dashboard can
 * be generated from it. Kept beside the routes in `app.ts`; a test checks that both list the same paths.
 */

const problemResponse = {
  description: 'A problem (RFC 9457)',
  content: {
    'application/problem+json': {
      schema: {
        type: 'object',
        required: ['type', 'title', 'status', 'detail'],
        properties: {
          type: { type: 'string' },
          title: { type: 'string' },
          status: { type: 'integer' },
          detail: { type: 'string' },
        },
      },
    },
  },
};

const jsonResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: { type: 'object' } } },
});

const errors = { '400': problemResponse, '401': problemResponse };

const ARROW = 'application/vnd.apache.arrow.stream';

const job = {
  type: 'object',
  required: ['id', 'kind', 'status', 'createdAt', 'options', 'progress'],
  properties: {
    id: { type: 'string' },
    kind: { type: 'string' },
    status: { type: 'string', enum: ['queued', 'running', 'succeeded', 'failed', 'cancelled'] },
    createdAt: { type: 'string', format: 'date-time' },
    startedAt: { type: ['string', 'null'], format: 'date-time' },
    finishedAt: { type: ['string', 'null'], format: 'date-time' },
    options: { type: 'object' },
    progress: {
      type: 'object',
      properties: {
        phase: { type: 'string' },
        message: { type: 'string' },
        done: { type: 'integer' },
        total: { type: 'integer' },
      },
    },
    result: {},
    error: { type: ['string', 'null'] },
  },
};

const ingestSummary = {
  type: 'object',
  properties: {
    upload: { type: 'string' },
    kind: { type: 'string', enum: ['tar', 'tar.gz', 'zip', 'file'] },
    formats: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          format: { type: 'string' },
          units: { type: 'integer' },
          runs: { type: 'integer' },
          events: { type: 'integer' },
          appended: { type: 'integer' },
          rejects: { type: 'integer' },
        },
      },
    },
    totals: { type: 'object' },
    rejects: { type: 'array', items: { type: 'object' } },
    skipped: { type: 'array', items: { type: 'object' } },
    ignored: { type: 'array', items: { type: 'object' } },
  },
};

const queryParameter = (name: string, description: string, type: 'string' | 'integer' = 'string') => ({
  name,
  in: 'query',
  required: false,
  description,
  schema: { type },
});

const pathParameter = (name: string, description: string) => ({
  name,
  in: 'path',
  required: true,
  description,
  schema: { type: 'string' },
});

export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'selfharness API',
      version: '1',
      description:
        'The event log of agent runs, its analytics and the harness versions, proposals and validations. Errors are problem+json.',
    },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }, {}],
    paths: {
      '/v1/events': {
        post: {
          summary:
            'Append native events: NDJSON (one TraceEvent per line) or an Arrow IPC stream (one row per event: string columns id, type, runId, data as JSON text; optional time as ISO text or timestamp, source as JSON text)',
          requestBody: {
            required: true,
            content: {
              'application/x-ndjson': { schema: { type: 'string' } },
              [ARROW]: { schema: { type: 'string', format: 'binary' } },
            },
          },
          responses: {
            '200': jsonResponse(
              '{ accepted, duplicates, rejected: [{ line, reason }] } for NDJSON, [{ row, reason }] (rows from 0) for Arrow',
            ),
            '413': problemResponse,
            ...errors,
          },
        },
      },
      '/v1/import': {
        post: {
          summary:
            'Import an uploaded Harbor job or trial, Terminal-Bench 1 run or SWE-agent set (.tar, .tar.gz, .tgz, .zip), or one trace file (.traj, .json, .ndjson, .jsonl, OTLP JSON)',
          parameters: [
            queryParameter(
              'name',
              'the file name (or send Content-Disposition: attachment; filename=…); needed for a single file',
            ),
            queryParameter('format', 'read everything as this format instead of detecting it'),
            queryParameter('model', 'model for runs whose source does not name one'),
            queryParameter('dataset', 'dataset for runs whose source does not name one'),
          ],
          requestBody: {
            required: true,
            content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
          },
          responses: {
            '200': {
              description: 'The per-format summary: runs, events, new events, rejects',
              content: { 'application/json': { schema: ingestSummary } },
            },
            '413': problemResponse,
            ...errors,
          },
        },
      },
      '/v1/traces': {
        post: {
          summary: 'OTLP/HTTP JSON trace receiver (ExportTraceServiceRequest)',
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object' } } } },
          responses: {
            '200': jsonResponse('{ partialSuccess: { rejectedSpans?, errorMessage? } }'),
            '415': problemResponse,
            ...errors,
          },
        },
      },
      '/v1/sql': {
        post: {
          summary: 'Run one read-only query (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN)',
          parameters: [
            queryParameter('limit', 'rows to return (default 10000, at most 1000000)', 'integer'),
            queryParameter(
              'format',
              '`json` (default), `csv` (or send Accept: text/csv) or `arrow` (or send Accept: application/vnd.apache.arrow.stream)',
            ),
          ],
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['sql'],
                  properties: { sql: { type: 'string' }, limit: { type: 'integer' }, format: { type: 'string' } },
                },
              },
              'text/plain': { schema: { type: 'string' } },
            },
          },
          responses: {
            '200': {
              description:
                '{ columns, rows, truncated }, CSV, or an Arrow IPC stream (nested, INTERVAL and UUID columns as strings); headers X-Truncated and X-Row-Count',
              content: {
                'application/json': { schema: { type: 'object' } },
                'text/csv': { schema: { type: 'string' } },
                [ARROW]: { schema: { type: 'string', format: 'binary' } },
              },
            },
            '504': problemResponse,
            ...errors,
          },
        },
      },
      '/v1/runs': {
        get: {
          summary: 'List runs',
          parameters: [
            queryParameter('model', 'only runs of this model'),
            queryParameter('split', 'only runs of this split'),
            queryParameter('outcome', 'passed, failed, invalid or unknown'),
            queryParameter('limit', 'at most this many (default 100)', 'integer'),
            queryParameter('offset', 'skip this many', 'integer'),
          ],
          responses: { '200': jsonResponse('{ total, runs }'), ...errors },
        },
      },
      '/v1/runs/{id}': {
        get: {
          summary: 'One run with its steps, tool calls and verifier results',
          parameters: [pathParameter('id', 'the run id')],
          responses: { '200': jsonResponse('the run'), '404': problemResponse, ...errors },
        },
      },
      '/v1/weaknesses': {
        get: {
          summary: 'The weakness clusters of the latest mining run',
          responses: { '200': jsonResponse('{ clusters }'), ...errors },
        },
      },
      '/v1/profiles': {
        get: { summary: 'Per-model failure profiles', responses: { '200': jsonResponse('the profiles'), ...errors } },
      },
      '/v1/harness/versions': {
        get: { summary: 'Registered harness versions', responses: { '200': jsonResponse('{ versions }'), ...errors } },
      },
      '/v1/harness/versions/{a}/diff/{b}': {
        get: {
          summary: 'The JSON Patch from harness version a to b (ids, unique prefixes or `default`)',
          parameters: [pathParameter('a', 'the version diffed from'), pathParameter('b', 'the version diffed to')],
          responses: { '200': jsonResponse('{ from, to, patch }'), ...errors },
        },
      },
      '/v1/proposals': {
        get: { summary: 'Proposed harness edits', responses: { '200': jsonResponse('{ proposals }'), ...errors } },
      },
      '/v1/validations': {
        get: {
          summary: 'Validation decisions',
          parameters: [queryParameter('proposal', 'only decisions about this proposal id')],
          responses: { '200': jsonResponse('{ validations }'), ...errors },
        },
      },
      '/v1/improve': {
        post: {
          summary: 'Start an improve job (mine, propose, validate, promote) in the background',
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['model'],
                  properties: {
                    model: { type: 'string' },
                    iterations: { type: 'integer' },
                    candidates: { type: 'integer' },
                    attempts: { type: 'integer' },
                    gate: { type: 'string' },
                    seed: { type: 'integer' },
                  },
                },
              },
            },
          },
          responses: {
            '202': {
              description: '{ job } (header Location: /v1/jobs/{id})',
              content: { 'application/json': { schema: { type: 'object', properties: { job } } } },
            },
            '409': problemResponse,
            '500': problemResponse,
            ...errors,
          },
        },
      },
      '/v1/jobs': {
        get: {
          summary: 'Jobs of this server, newest first',
          responses: {
            '200': {
              description: '{ jobs }',
              content: {
                'application/json': { schema: { type: 'object', properties: { jobs: { type: 'array', items: job } } } },
              },
            },
            ...errors,
          },
        },
      },
      '/v1/jobs/{id}': {
        get: {
          summary: 'One job with its status, progress, result or error',
          parameters: [pathParameter('id', 'the job id')],
          responses: {
            '200': {
              description: '{ job }',
              content: { 'application/json': { schema: { type: 'object', properties: { job } } } },
            },
            '404': problemResponse,
            ...errors,
          },
        },
        delete: {
          summary: 'Cancel a running job',
          parameters: [pathParameter('id', 'the job id')],
          responses: {
            '200': {
              description: '{ job }, cancelled',
              content: { 'application/json': { schema: { type: 'object', properties: { job } } } },
            },
            '202': {
              description: '{ job }, still stopping its trials',
              content: { 'application/json': { schema: { type: 'object', properties: { job } } } },
            },
            '404': problemResponse,
            '409': problemResponse,
            ...errors,
          },
        },
      },
      '/v1/jobs/{id}/events': {
        get: {
          summary: "A job's progress as server-sent events, until it finishes",
          parameters: [pathParameter('id', 'the job id')],
          responses: {
            '200': {
              description: 'text/event-stream of job updates',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            },
            '404': problemResponse,
            ...errors,
          },
        },
      },
      '/v1/cli': {
        post: {
          summary: 'Run a selfharness command inside the server that owns the database (loopback clients only)',
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['argv'],
                  properties: { argv: { type: 'array', items: { type: 'string' } }, cwd: { type: 'string' } },
                },
              },
            },
          },
          responses: {
            '200': {
              description: 'NDJSON: lines { stream: "stdout" | "stderr", text } as the command writes, then { exit }',
              content: { 'application/x-ndjson': { schema: { type: 'string' } } },
            },
            '403': problemResponse,
            ...errors,
          },
        },
      },
      '/': {
        get: {
          summary: 'Redirects to the dashboard',
          responses: { '302': { description: 'Location: /dashboard/' } },
        },
      },
      '/dashboard/{path}': {
        get: {
          summary: "The dashboard's pages and assets (no data: every number comes from the API)",
          parameters: [pathParameter('path', 'a page or asset of the dashboard')],
          responses: { '200': { description: 'HTML, JavaScript or CSS' }, '404': problemResponse },
        },
      },
      '/v1/openapi.json': {
        get: { summary: 'This document', responses: { '200': jsonResponse('OpenAPI 3.1') } },
      },
    },
  };
}
