import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServedLog, serveNewLog } from '../support/http-app.js';

/**
 * A client posts 100,000 events over HTTP in batches, with a bad line in every batch: every line is answered, accepted
 * or rejected with a reason, and the log holds exactly the accepted events (count and a digest of their ids) and the
 * rejected lines.
 */

const EVENTS = 100_000;
const BATCH = 5_000;
const CONNECTIONS = 4;

let served: ServedLog;
let base: string;

beforeAll(async () => {
  served = await serveNewLog('api-bulk');
  base = served.url;
});

afterAll(() => served.stop());

/** Run `r` has 100 events: start, 49 steps with a tool call each (minus one), end. */
function eventLine(index: number): { id: string; line: string } {
  const run = Math.floor(index / 100);
  const position = index % 100;
  const runId = `bulk-${run}`;
  if (position === 0) {
    const id = `${runId}#start`;
    return { id, line: JSON.stringify({ id, runId, type: 'run-start', data: { task: `t${run % 7}`, model: 'm' } }) };
  }
  if (position === 99) {
    const id = `${runId}#end`;
    return {
      id,
      line: JSON.stringify({ id, runId, type: 'run-end', data: { outcome: run % 2 ? 'passed' : 'failed' } }),
    };
  }
  const step = Math.ceil(position / 2);
  if (position % 2 === 1) {
    const id = `${runId}#s${step}`;
    return {
      id,
      line: JSON.stringify({ id, runId, type: 'step-create', data: { step, role: 'agent', message: 'go' } }),
    };
  }
  const id = `${runId}#c${step}`;
  return {
    id,
    line: JSON.stringify({
      id,
      runId,
      type: 'tool-call',
      data: { step, callId: `c${step}`, tool: 'shell', arguments: {} },
    }),
  };
}

describe('100,000 events posted in batches over HTTP', () => {
  it('answers every line, and the log holds exactly the accepted events and the rejected lines', async () => {
    const batches: { body: string; ids: string[] }[] = [];
    for (let start = 0; start < EVENTS; start += BATCH) {
      const lines: string[] = [];
      const ids: string[] = [];
      for (let index = start; index < start + BATCH; index++) {
        const event = eventLine(index);
        lines.push(event.line);
        ids.push(event.id);
      }
      // One broken line per batch, in the middle.
      lines.splice(BATCH / 2, 0, `{"id": "broken-${start}", "runId": `);
      batches.push({ body: `${lines.join('\n')}\n`, ids });
    }

    const acknowledged: string[] = [];
    let rejected = 0;
    let next = 0;
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async () => {
        while (next < batches.length) {
          const batch = batches[next++]!;
          const response = await fetch(`${base}/v1/events`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/x-ndjson' },
            body: batch.body,
          });
          expect(response.status).toBe(200);
          const receipt = (await response.json()) as {
            accepted: number;
            duplicates: number;
            rejected: { line: number; reason: string }[];
          };
          expect(receipt.accepted + receipt.duplicates + receipt.rejected.length).toBe(BATCH + 1);
          expect(receipt.rejected).toEqual([{ line: BATCH / 2 + 1, reason: expect.stringMatching(/^invalid JSON/) }]);
          expect(receipt.accepted).toBe(BATCH);
          acknowledged.push(...batch.ids);
          rejected += receipt.rejected.length;
        }
      }),
    );
    expect(acknowledged).toHaveLength(EVENTS);

    const digest = createHash('md5')
      .update([...acknowledged].sort().join(','))
      .digest('hex');
    const answer = await fetch(`${base}/v1/sql`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        sql: `SELECT (SELECT count(*) FROM events) AS events,
                     (SELECT md5(string_agg(id, ',' ORDER BY id)) FROM events) AS digest,
                     (SELECT count(*) FROM ingest_rejects WHERE format = 'http') AS rejects,
                     (SELECT count(*) FROM runs) AS runs,
                     (SELECT count(*) FROM tool_calls) AS calls`,
      }),
    });
    const [row] = ((await answer.json()) as { rows: Record<string, unknown>[] }).rows;
    expect(row).toEqual({ events: EVENTS, digest, rejects: rejected, runs: EVENTS / 100, calls: (EVENTS / 100) * 49 });
  }, 120_000);
});
