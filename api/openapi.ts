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
          summary: 'Append native events (NDJSON, one TraceEvent per line)',
          requestBody: { required: true, content: { 'application/x-ndjson': { schema: { type: 'string' } } } },
          responses: {
            '200': jsonResponse('{ accepted, duplicates, rejected: [{ line, reason }] }'),
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
            queryParameter('limit', 'rows to return (default 10000, at most 100000)', 'integer'),
            queryParameter('format', '`csv` for CSV (or send Accept: text/csv)'),
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
              description: '{ columns, rows, truncated } or CSV (header X-Truncated)',
              content: {
                'application/json': { schema: { type: 'object' } },
                'text/csv': { schema: { type: 'string' } },
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
      '/v1/openapi.json': {
        get: { summary: 'This document', responses: { '200': jsonResponse('OpenAPI 3.1') } },
      },
    },
  };
}
