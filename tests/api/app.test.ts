import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { installAnalytics } from '../../analytics/index.js';
import { createApp } from '../../api/index.js';
import { EventLog, type TraceEvent } from '../../core/index.js';
import { sampleRun } from '../support/events.js';

let folder: string;
let log: EventLog;

beforeEach(async () => {
  folder = mkdtempSync(join(tmpdir(), 'selfharness-api-'));
  log = await EventLog.open(join(folder, 'log.duckdb'));
  await installAnalytics(log.database);
});

afterEach(() => {
  log.close();
  rmSync(folder, { recursive: true, force: true });
});

function ndjson(events: readonly TraceEvent[]): string {
  return `${events.map((event) => JSON.stringify(event)).join('\n')}\n`;
}

async function count(sql: string): Promise<number> {
  return Number((await log.query<{ n: bigint }>(sql))[0]?.n ?? 0);
}

/** A run of `steps` steps with one tool call each: 2 + 3 × steps events. */
function longRun(runId: string, steps: number): TraceEvent[] {
  const events: TraceEvent[] = [
    { id: `${runId}#start`, runId, type: 'run-start', data: { task: 'bulk', model: 'model-b', attempt: 1 } },
  ];
  for (let step = 1; step <= steps; step++) {
    events.push(
      { id: `${runId}#s${step}`, runId, type: 'step-create', data: { step, role: 'agent', message: `step ${step}` } },
      {
        id: `${runId}#c${step}`,
        runId,
        type: 'tool-call',
        data: { step, callId: `c${step}`, tool: 'shell', arguments: {} },
      },
      {
        id: `${runId}#r${step}`,
        runId,
        type: 'tool-result',
        data: { step, callId: `c${step}`, output: 'ok', exitCode: 0 },
      },
    );
  }
  events.push({ id: `${runId}#end`, runId, type: 'run-end', data: { outcome: 'passed' } });
  return events;
}

describe('POST /v1/events', () => {
  it('appends 10,000 events sent in batches of 1,000, and a resend adds nothing', async () => {
    const app = createApp({ log });
    const events = Array.from({ length: 50 }, (_, index) => longRun(`bulk-${index}`, 66)).flat();
    expect(events.length).toBe(10_000);
    let accepted = 0;
    for (let start = 0; start < events.length; start += 1000) {
      const response = await app.request('/v1/events', {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-ndjson' },
        body: ndjson(events.slice(start, start + 1000)),
      });
      expect(response.status).toBe(200);
      const receipt = (await response.json()) as { accepted: number; duplicates: number; rejected: unknown[] };
      expect(receipt.rejected).toEqual([]);
      accepted += receipt.accepted;
    }
    expect(accepted).toBe(10_000);
    expect(await count('SELECT count(DISTINCT id) AS n FROM events')).toBe(10_000);
    const stored = new Set((await log.query<{ id: string }>('SELECT id FROM events')).map((row) => row.id));
    expect(events.every((event) => stored.has(event.id))).toBe(true);
    // The next request sees every acknowledged event in the projections too (derived for the batches together).
    const listed = (await (await app.request('/v1/runs?outcome=passed&limit=100')).json()) as {
      total: number;
      runs: { step_count: number }[];
    };
    expect(listed.total).toBe(50);
    expect(listed.runs.every((run) => run.step_count === 66)).toBe(true);
    expect(await count("SELECT count(*) AS n FROM runs WHERE outcome = 'passed' AND step_count = 66")).toBe(50);

    const again = await app.request('/v1/events', { method: 'POST', body: ndjson(events.slice(0, 1000)) });
    expect(await again.json()).toEqual({ accepted: 0, duplicates: 1000, rejected: [] });
    expect(await count('SELECT count(*) AS n FROM events')).toBe(10_000);
  });

  it('refuses bad lines with their line number and reason, keeps them, and appends the rest', async () => {
    const app = createApp({ log });
    const good = sampleRun('run-1', 'failed');
    const body = [
      JSON.stringify(good[0]),
      '{not json',
      JSON.stringify({ id: 'x', runId: 'run-1', type: 'step-create', data: { role: 'agent' } }),
      '',
      ...good.slice(1).map((event) => JSON.stringify(event)),
    ].join('\n');
    const response = await app.request('/v1/events', { method: 'POST', body });
    const receipt = (await response.json()) as { accepted: number; rejected: { line: number; reason: string }[] };
    expect(receipt.accepted).toBe(good.length);
    expect(receipt.rejected.map((reject) => reject.line)).toEqual([2, 3]);
    expect(receipt.rejected[0]?.reason).toMatch(/^invalid JSON/);
    expect(receipt.rejected[1]?.reason).toMatch(/does not match its schema: data\.step/);
    const kept = await log.query<{ format: string; position: string; raw: string }>(
      'SELECT format, position, raw FROM ingest_rejects ORDER BY position',
    );
    expect(kept).toEqual([
      { format: 'http', position: 'line 2', raw: '{not json' },
      expect.objectContaining({ format: 'http', position: 'line 3' }),
    ]);
  });

  it('answers a body over the limit with 413 problem+json', async () => {
    const app = createApp({ log, bodyLimitBytes: 1000 });
    const response = await app.request('/v1/events', { method: 'POST', body: ndjson(longRun('big', 20)) });
    expect(response.status).toBe(413);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    const body = (await response.json()) as { status: number; detail: string };
    expect(body.status).toBe(413);
    expect(body.detail).toContain('larger than 1000 bytes');
    expect(await count('SELECT count(*) AS n FROM events')).toBe(0);
  });
});

describe('POST /v1/traces', () => {
  it('turns an OTLP/JSON export into runs with steps, readable at /v1/runs/:id', async () => {
    const app = createApp({ log });
    const document = readFileSync(resolve(import.meta.dirname, '../fixtures/otel/genai-agent.json'), 'utf8');
    const response = await app.request('/v1/traces', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: document,
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ partialSuccess: {} });
    const runId = 'otel:4bf92f3577b34da6a3ce929d0e0e4736';
    const run = (await (await app.request(`/v1/runs/${encodeURIComponent(runId)}`)).json()) as {
      task: string;
      model: string;
      steps: { step: number }[];
      toolCalls: unknown[];
    };
    expect(run.task).toBe('widget-failing-test');
    expect(run.model).toBe('gpt-4o');
    expect(run.steps.map((step) => step.step)).toEqual([1, 2, 3]);
    expect(run.toolCalls.length).toBeGreaterThan(0);
  });

  it('answers a body that is not JSON with a 400 problem, and OTLP protobuf with 415', async () => {
    const app = createApp({ log });
    const broken = await app.request('/v1/traces', { method: 'POST', body: '{"resourceSpans": [' });
    expect(broken.status).toBe(400);
    expect(((await broken.json()) as { detail: string }).detail).toMatch(/not OTLP JSON/);
    const protobuf = await app.request('/v1/traces', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-protobuf' },
      body: 'x',
    });
    expect(protobuf.status).toBe(415);
  });
});

describe('POST /v1/sql', () => {
  async function sql(app: ReturnType<typeof createApp>, query: string, path = '/v1/sql', headers = {}) {
    return app.request(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify({ sql: query }),
    });
  }

  it('answers a SELECT with columns and rows, as JSON or CSV, and says when rows were cut', async () => {
    const app = createApp({ log });
    await log.appendEvents([...sampleRun('run-a', 'failed'), ...sampleRun('run-b', 'passed')]);
    const response = await sql(app, 'SELECT run_id, outcome, step_count FROM runs ORDER BY run_id');
    expect(await response.json()).toEqual({
      columns: ['run_id', 'outcome', 'step_count'],
      rows: [
        { run_id: 'run-a', outcome: 'failed', step_count: 2 },
        { run_id: 'run-b', outcome: 'passed', step_count: 2 },
      ],
      truncated: false,
    });
    const typed = await sql(app, "SELECT count(*) AS n, TIMESTAMPTZ '2026-01-02 03:04:05+00' AS at FROM runs");
    expect(((await typed.json()) as { rows: unknown[] }).rows).toEqual([{ n: 2, at: '2026-01-02T03:04:05.000Z' }]);
    const cut = await sql(app, 'SELECT * FROM range(50) t(i)', '/v1/sql?limit=10');
    const cutBody = (await cut.json()) as { rows: unknown[]; truncated: boolean };
    expect(cutBody.rows.length).toBe(10);
    expect(cutBody.truncated).toBe(true);
    const csv = await sql(app, 'SELECT run_id, outcome FROM runs ORDER BY run_id', '/v1/sql', { Accept: 'text/csv' });
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(await csv.text()).toBe('run_id,outcome\nrun-a,failed\nrun-b,passed\n');
    for (const statement of ['DESCRIBE runs', 'SHOW TABLES', 'SUMMARIZE runs', 'EXPLAIN SELECT * FROM runs']) {
      expect((await sql(app, statement)).status, statement).toBe(200);
    }
  });

  it('interrupts a query that runs past the timeout with a 504 problem, and serves the next request', async () => {
    const app = createApp({ log, sqlTimeoutMs: 200 });
    const started = Date.now();
    const response = await sql(app, 'SELECT count(*) FROM range(10000000000) a, range(1000) b');
    expect(response.status).toBe(504);
    expect(((await response.json()) as { detail: string }).detail).toMatch(/longer than 200 ms and was interrupted/);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await sql(app, 'SELECT 42 AS answer')).status).toBe(200);
  });
});

describe('read routes', () => {
  it('lists runs with filters and paging, and answers an unknown run with 404', async () => {
    const app = createApp({ log });
    await log.appendEvents([...sampleRun('run-a', 'failed'), ...sampleRun('run-b', 'passed'), ...sampleRun('run-c')]);
    const failed = (await (await app.request('/v1/runs?outcome=failed')).json()) as {
      total: number;
      runs: { run_id: string }[];
    };
    expect(failed.total).toBe(2);
    expect(failed.runs.map((run) => run.run_id)).toEqual(['run-a', 'run-c']);
    const page = (await (await app.request('/v1/runs?limit=1&offset=1')).json()) as { runs: { run_id: string }[] };
    expect(page.runs.map((run) => run.run_id)).toEqual(['run-b']);
    const none = (await (await app.request('/v1/runs?model=no-such-model')).json()) as { total: number };
    expect(none.total).toBe(0);
    const missing = await app.request('/v1/runs/nope');
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { detail: string }).detail).toBe(
      'Unknown run nope: list runs with GET /v1/runs.',
    );
    const bad = await app.request('/v1/runs?limit=lots');
    expect(bad.status).toBe(400);
  });

  it('serves weaknesses, profiles, harness versions and their diff, proposals and validations', async () => {
    const app = createApp({ log });
    await log.appendEvents([...sampleRun('run-a', 'failed'), ...sampleRun('run-b', 'failed')]);
    expect(await (await app.request('/v1/weaknesses')).json()).toEqual({ clusters: [] });
    const profiles = await app.request('/v1/profiles');
    expect(profiles.status).toBe(200);
    expect(JSON.stringify(await profiles.json())).toContain('model-a');
    const versions = (await (await app.request('/v1/harness/versions')).json()) as { versions: unknown[] };
    expect(versions.versions).toEqual([]);
    const diff = (await (await app.request('/v1/harness/versions/default/diff/default')).json()) as {
      patch: unknown[];
    };
    expect(diff.patch).toEqual([]);
    const unknown = await app.request('/v1/harness/versions/default/diff/ffff');
    expect(unknown.status).toBe(400);
    expect(await (await app.request('/v1/proposals')).json()).toEqual({ proposals: [] });
    expect(await (await app.request('/v1/validations')).json()).toEqual({ validations: [] });
  });

  it('lists every route in the OpenAPI document, and answers unknown routes with a 404 problem', async () => {
    const app = createApp({ log });
    const document = (await (await app.request('/v1/openapi.json')).json()) as {
      openapi: string;
      paths: Record<string, object>;
    };
    expect(document.openapi).toBe('3.1.0');
    const routes = new Set(
      app.routes
        .filter((route) => route.method !== 'ALL')
        .map(
          (route) =>
            `${route.method.toLowerCase()} ${route.path.replace(/:(\w+)/g, '{$1}').replace(/\/\*$/, '/{path}')}`,
        ),
    );
    const documented = Object.entries(document.paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method} ${path}`),
    );
    expect([...routes].filter((route) => !documented.includes(route))).toEqual([]);
    // Routes of the job, CLI and dashboard registrars are documented here before those files register them.
    const registeredElsewhere = [
      'post /v1/improve',
      'get /v1/jobs',
      'get /v1/jobs/{id}',
      'delete /v1/jobs/{id}',
      'get /v1/jobs/{id}/events',
      'post /v1/cli',
      'get /',
      'get /dashboard/{path}',
    ];
    expect(documented.filter((route) => !routes.has(route) && !registeredElsewhere.includes(route))).toEqual([]);
    for (const route of ['post /v1/import', 'post /v1/events', 'post /v1/sql']) expect(routes.has(route)).toBe(true);
    const missing = await app.request('/v1/nothing');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toBe('application/problem+json');
    expect(((await missing.json()) as { detail: string }).detail).toMatch(/No route GET \/v1\/nothing/);
  });

  it('with a token, answers requests without the right bearer token with 401', async () => {
    const app = createApp({ log, token: 's3cret' });
    expect((await app.request('/v1/runs')).status).toBe(401);
    const wrong = await app.request('/v1/runs', { headers: { Authorization: 'Bearer guess' } });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { detail: string }).detail).toMatch(/Authorization: Bearer/);
    expect((await app.request('/v1/runs', { headers: { Authorization: 'Bearer s3cret' } })).status).toBe(200);
  });
});
