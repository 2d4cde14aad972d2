import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventLog } from '../../core/index.js';
import { sampleRun } from '../support/events.js';
import { type ServedLog, serveNewLog } from '../support/http-app.js';

/**
 * Bad input over real HTTP: malformed OTLP, bodies over the limit, deeply nested JSON, bytes that are not UTF-8. Each
 * gets a clear answer; the server stays up, and good records beside bad ones still load.
 */

let log: EventLog;
let served: ServedLog;
let base: string;
const BODY_LIMIT = 256 * 1024;

beforeAll(async () => {
  served = await serveNewLog('api-bad', { bodyLimitBytes: BODY_LIMIT });
  log = served.log;
  base = served.url;
});

afterAll(() => served.stop());

async function post(path: string, body: string | Uint8Array, type = 'application/json') {
  const response = await fetch(`${base}${path}`, { method: 'POST', headers: { 'Content-Type': type }, body });
  const text = await response.text();
  return { status: response.status, type: response.headers.get('content-type') ?? '', text };
}

async function eventCount(): Promise<number> {
  return Number((await log.query<{ n: bigint }>('SELECT count(*) AS n FROM events'))[0]?.n ?? 0);
}

describe('malformed OTLP on POST /v1/traces', () => {
  it('refuses a body that is not JSON with a 400 problem that says what to send', async () => {
    const answer = await post('/v1/traces', '{"resourceSpans": [ {');
    expect(answer.status).toBe(400);
    expect(answer.type).toContain('application/problem+json');
    expect(JSON.parse(answer.text).detail).toMatch(/not OTLP JSON/);
  });

  it('answers spans of the wrong shape with partialSuccess naming why, and keeps them in ingest_rejects', async () => {
    const before = await eventCount();
    const answer = await post(
      '/v1/traces',
      JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ name: 42, traceId: null, attributes: 'x' }] }] }] }),
    );
    expect(answer.status).toBe(200);
    const body = JSON.parse(answer.text) as { partialSuccess: { rejectedSpans?: number; errorMessage?: string } };
    expect(body.partialSuccess.rejectedSpans).toBeGreaterThan(0);
    expect(body.partialSuccess.errorMessage).toBeTruthy();
    expect(await eventCount()).toBe(before);
  });

  it('refuses a JSON document that is no OTLP request at all', async () => {
    for (const document of ['[]', '"spans"', '{"resourceSpans": "nope"}', 'null']) {
      const answer = await post('/v1/traces', document);
      expect([200, 400]).toContain(answer.status);
      if (answer.status === 200) expect(JSON.parse(answer.text).partialSuccess.errorMessage).toBeTruthy();
      else expect(JSON.parse(answer.text).detail).toBeTruthy();
    }
  });
});

/** Posts on a connection of its own (the server may close it after refusing the body unread), like curl does. */
function postAlone(path: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = request(`${base}${path}`, { method: 'POST', agent: false }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

describe('bodies over the limit', () => {
  it('answers 413 with what to do, for events, traces and SQL, and the server stays up', async () => {
    const big = 'x'.repeat(BODY_LIMIT + 1);
    for (const path of ['/v1/events', '/v1/traces', '/v1/sql']) {
      const answer = await postAlone(path, big);
      expect(answer.status, path).toBe(413);
      expect(JSON.parse(answer.text).detail).toMatch(/smaller batches/);
    }
    expect((await fetch(`${base}/v1/openapi.json`)).status).toBe(200);
  });
});

describe('deeply nested JSON and bytes that are not UTF-8 on POST /v1/events', () => {
  it('rejects a line nested 100,000 deep with its reason and loads the lines around it', async () => {
    const [first, second] = sampleRun('nested-neighbours');
    const nested = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const body = `${JSON.stringify(first)}\n${nested}\n${JSON.stringify(second)}\n`;
    const answer = await post('/v1/events', body, 'application/x-ndjson');
    expect(answer.status).toBe(200);
    const receipt = JSON.parse(answer.text) as { accepted: number; rejected: { line: number; reason: string }[] };
    expect(receipt.accepted).toBe(2);
    expect(receipt.rejected).toHaveLength(1);
    expect(receipt.rejected[0]?.line).toBe(2);
    expect(receipt.rejected[0]?.reason).toBeTruthy();
  });

  it('rejects a line with bytes that are not UTF-8, naming the line, and keeps the raw line in ingest_rejects', async () => {
    const [first, second] = sampleRun('not-utf8');
    const bad = Buffer.concat([
      Buffer.from(
        '{"id":"not-utf8#x","runId":"not-utf8","type":"step-create","data":{"step":1,"role":"agent","message":"',
      ),
      Buffer.from([0xc3, 0x28, 0xff, 0xfe]),
      Buffer.from('"}}'),
    ]);
    const body = Buffer.concat([
      Buffer.from(`${JSON.stringify(first)}\n`),
      bad,
      Buffer.from(`\n${JSON.stringify(second)}\n`),
    ]);
    const answer = await post('/v1/events', new Uint8Array(body), 'application/x-ndjson');
    expect(answer.status).toBe(200);
    const receipt = JSON.parse(answer.text) as { accepted: number; rejected: { line: number; reason: string }[] };
    expect(receipt.accepted).toBe(2);
    expect(receipt.rejected).toEqual([{ line: 2, reason: expect.stringMatching(/UTF-8/) }]);
    const kept = await log.query<{ reason: string }>(
      "SELECT reason FROM ingest_rejects WHERE format = 'http' AND reason LIKE '%UTF-8%'",
    );
    expect(kept.length).toBeGreaterThan(0);
  });
});
