import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventLog } from '../../core/index.js';
import { ingestPaths } from '../../ingest/ingest.js';
import { ingestFiles } from '../fuzz/regression.js';

const fixture = resolve(import.meta.dirname, '../fixtures/native/events.ndjson');

let log: EventLog;
beforeEach(async () => {
  log = await EventLog.open(':memory:');
});
afterEach(() => log.close());

describe('native NDJSON ingest', () => {
  it('loads every valid line and rejects the bad ones with file, line and reason', async () => {
    const summary = await ingestPaths(log, [fixture]);
    expect(summary.totals).toMatchObject({ units: 1, runs: 2, events: 7, appended: 7, rejects: 3 });
    const rejects = await log.query<{ file: string; position: string; reason: string; raw: string }>(
      'SELECT file, position, reason, raw FROM ingest_rejects ORDER BY position',
    );
    expect(rejects.map((reject) => [reject.position, reject.file])).toEqual([
      ['line 11', fixture],
      ['line 4', fixture],
      ['line 7', fixture],
    ]);
    expect(rejects[0]?.reason).toMatch(/^truncated last line/);
    expect(rejects[1]?.reason).toMatch(/^invalid JSON/);
    expect(rejects[1]?.raw).toContain('"id":"n1#result-1"');
    expect(rejects[2]?.reason).toBe(
      'event does not match its schema: data.step: Invalid input: expected number, received string',
    );
  });

  it('stores the source of every event: format, file and line', async () => {
    await ingestPaths(log, [fixture]);
    const rows = await log.query('SELECT source_format, source_file, source_position FROM events WHERE id = $1', [
      'n1#end',
    ]);
    expect(rows).toEqual([{ source_format: 'native', source_file: fixture, source_position: 'line 8' }]);
  });

  it('adds nothing and keeps no second copy of a reject when the same file is ingested again', async () => {
    await ingestPaths(log, [fixture]);
    const again = await ingestPaths(log, [join(fixture, '..')]);
    expect(again.totals).toMatchObject({ events: 7, appended: 0 });
    expect(await log.countEvents()).toBe(7);
    expect(await log.query('SELECT count(*)::INT AS n FROM ingest_rejects')).toEqual([{ n: 3 }]);
  });

  it('fills in the model and dataset a source lacks, and leaves the ones it names', async () => {
    await ingestPaths(log, [fixture], { model: 'model-x', dataset: 'override' });
    expect(await log.query('SELECT run_id, model, dataset FROM runs ORDER BY run_id')).toEqual([
      { run_id: 'native:n1', model: 'model-x', dataset: 'fixtures' },
      { run_id: 'native:n2', model: 'model-x', dataset: 'override' },
    ]);
  });

  it('refuses an unknown format and a missing path before reading anything', async () => {
    await expect(ingestPaths(log, [fixture], { format: 'nope' })).rejects.toThrow(
      /Unknown format "nope". Known formats: harbor, tb1, atif, swe-agent, swe-bench, otel, native\.$/,
    );
    await expect(ingestPaths(log, ['/no/such/file.ndjson'])).rejects.toThrow(
      'Cannot ingest /no/such/file.ndjson: no such file or directory.',
    );
    expect(await log.countEvents()).toBe(0);
  });
});

describe('native NDJSON: bugs found by fuzzing (tests/fuzz)', () => {
  const original = readFileSync(fixture);
  const insert = (at: number, bytes: number[]) =>
    Buffer.concat([original.subarray(0, at), Buffer.from(bytes), original.subarray(at)]);
  const fixtureEvents = 7;

  it('reads a file whose first line is damaged: that line is rejected at line 1, the rest loads', async () => {
    // A NUL byte inside the first line's "type" key: the line no longer names an event type.
    const { summary, events, rejects } = await ingestFiles({ 'events.ndjson': insert(18, [0]) });
    expect(summary.skipped).toEqual([]);
    expect(events.map((event) => event.id)).not.toContain('n1#start');
    expect(events).toHaveLength(fixtureEvents - 1);
    expect(rejects.map((reject) => reject.position)).toEqual(['line 1', 'line 11', 'line 4', 'line 7']);
    expect(rejects[0]?.reason).toMatch(/^invalid JSON: /);
    expect(summary.totals.rejects).toBe(rejects.length);
  });

  it('reads a file whose first event is longer than the head that detection looks at', async () => {
    const long = 'x'.repeat(10_000);
    // The type comes after a long task name, beyond the first 4 KiB of the file.
    const first = `{"id":"long#start","runId":"native:long","data":{"task":"${long}"},"type":"run-start"}`;
    const { summary, events } = await ingestFiles({ 'long.ndjson': `${first}\n${original.toString('utf8')}` });
    expect(summary.skipped).toEqual([]);
    expect(events.map((event) => event.id)).toContain('long#start');
    expect(events).toHaveLength(fixtureEvents + 1);
  });

  it('rejects a line that is not valid UTF-8 at its line, naming the byte, instead of loading U+FFFD', async () => {
    // 0xC3 0x28 inside the message of line 2 (a lead byte without its continuation byte).
    const at = original.indexOf('Summing');
    const lineStart = original.lastIndexOf(10, at) + 1;
    const { events, rejects } = await ingestFiles({ 'events.ndjson': insert(at, [0xc3, 0x28]) });
    expect(events.map((event) => event.id)).not.toContain('n1#step-1');
    expect(events).toHaveLength(fixtureEvents - 1);
    const reject = rejects.find((entry) => entry.position === 'line 2');
    expect(reject?.reason).toBe(
      `the line is not valid UTF-8 (first bad byte at offset ${at - lineStart}); save or export the file as UTF-8 and import it again`,
    );
    const stored = await ingestFiles({ 'events.ndjson': original });
    expect(stored.events.find((event) => event.id === 'n1#step-1')).toBeDefined();
  });

  it('rejects bytes that are not UTF-8 in a line cut between two read chunks and in an unterminated last line', async () => {
    // Just under 1 MiB of valid lines first, so that the bad line straddles the reader's 1 MiB chunk boundary.
    const filler = Array.from(
      { length: 2_500 },
      (_, index) =>
        `{"id":"f#${index}","runId":"native:f","type":"step-create","data":{"step":${index + 1},"role":"agent","message":"${'m'.repeat(300)}"}}`,
    ).join('\n');
    const prefix = '{"id":"f#bad","runId":"native:f","type":"step-create","data":{"step":0,"role":"agent","message":"';
    // The bad byte of the first bad line is the first byte of the second chunk.
    const straddling = Buffer.from(`${prefix}${'a'.repeat((1 << 20) - filler.length - 1 - prefix.length)}`);
    const unterminated = Buffer.from(`${prefix}a`);
    const content = Buffer.concat([
      Buffer.from(`${filler}\n`),
      straddling,
      Buffer.from([0xff]),
      Buffer.from('"}}\n'),
      unterminated,
      Buffer.from([0xe2, 0x82]),
    ]);
    expect(filler.length + 1 + straddling.length).toBe(1 << 20);
    const { events, rejects } = await ingestFiles({ 'big.ndjson': content });
    expect(events).toHaveLength(2_500);
    expect(rejects.map((reject) => [reject.position, reject.reason.split(';')[0]])).toEqual([
      ['line 2501', `the line is not valid UTF-8 (first bad byte at offset ${straddling.length})`],
      ['line 2502', `the line is not valid UTF-8 (first bad byte at offset ${unterminated.length})`],
    ]);
  });
});
