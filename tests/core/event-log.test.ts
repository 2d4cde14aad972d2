import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  EventLog,
  PROJECTION_TABLES,
  type RejectedRecord,
  type StagingBatch,
  SystemError,
  stageTraceEvent,
  type TraceEvent,
  UserError,
} from '../../core/index.js';
import { sampleRun } from '../support/events.js';

let log: EventLog;

beforeEach(async () => {
  log = await EventLog.open(':memory:');
});
afterEach(() => log.close());

/** Opens one database file twice (two connections of this process, as a server and its job), then closes both. */
async function withTwoConnections(work: (first: EventLog, second: EventLog) => Promise<void>): Promise<void> {
  const folder = mkdtempSync(join(tmpdir(), 'selfharness-two-connections-'));
  const path = join(folder, 'log.duckdb');
  const first = await EventLog.open(path);
  const second = await EventLog.open(path);
  try {
    await work(first, second);
  } finally {
    second.close();
    first.close();
    rmSync(folder, { recursive: true, force: true });
  }
}

async function snapshot(target: EventLog) {
  const tables: Record<string, unknown[]> = {};
  for (const table of PROJECTION_TABLES) tables[table] = await target.query(`SELECT * FROM ${table} ORDER BY ALL`);
  return tables;
}

describe('event log', () => {
  it('appends a run and derives runs, steps, tool calls and verifications from it', async () => {
    const result = await log.appendEvents(sampleRun('r1'));
    expect(result).toMatchObject({ appended: 9, duplicates: 0, rejected: 0 });

    const [run] = await log.query('SELECT * FROM runs');
    expect(run).toMatchObject({
      run_id: 'r1',
      task: 'make-output',
      model: 'model-a',
      dataset: 'unit',
      attempt: 1,
      outcome: 'failed',
      reward: 0,
      failure_reason: 'tests failed',
      step_count: 2,
      tool_call_count: 2,
      prompt_tokens: 220n,
      completion_tokens: 22n,
    });
    const calls = await log.query('SELECT step, command, exit_code, output_excerpt FROM tool_calls ORDER BY step');
    expect(calls).toEqual([
      { step: 1, command: 'make', exit_code: 2, output_excerpt: 'make: *** No targets.  Stop.' },
      { step: 2, command: 'make all', exit_code: 0, output_excerpt: 'ok' },
    ]);
    expect(await log.query('SELECT test_name, status, message FROM verifications')).toEqual([
      { test_name: 'test_output', status: 'failed', message: 'output.txt missing' },
    ]);
  });

  it('keeps streams that are no runs (a harness version) out of the projections, and adds them once', async () => {
    const version = {
      id: 'harness-version-create:abc',
      runId: 'harness:abc',
      type: 'harness-version-create' as const,
      data: { versionId: 'abc', spec: { instructions: {} } },
    };
    await log.appendEvents(sampleRun('r1'));
    expect(await log.appendEvents([version])).toMatchObject({ appended: 1 });
    expect(await log.appendEvents([version])).toMatchObject({ appended: 0, duplicates: 1 });
    const diagnosis = {
      id: 'diagnosis:v1:judge',
      runId: 'r1',
      type: 'diagnosis-create' as const,
      data: {
        promptVersion: 'v1',
        model: 'judge',
        terminalCause: 'no output file',
        criticality: 'root-cause' as const,
        mechanism: 'missing-required-artifact',
        evidenceSteps: [2],
        reasoning: 'The verifier reports output.txt missing.',
      },
    };
    expect(await log.appendEvents([diagnosis])).toMatchObject({ appended: 1 });
    expect(await log.appendEvents([diagnosis])).toMatchObject({ appended: 0, duplicates: 1 });
    // A batch of a run's events with and without events of other kinds: every one of them is known either way.
    expect(await log.appendEvents(sampleRun('r1'))).toMatchObject({ appended: 0, duplicates: 9 });
    expect(await log.appendEvents([...sampleRun('r1'), diagnosis, version])).toMatchObject({
      appended: 0,
      duplicates: 11,
    });
    expect(await log.query('SELECT run_id, step_count FROM runs')).toEqual([{ run_id: 'r1', step_count: 2 }]);
    expect(await log.countEvents()).toBe(11);
  });

  it('gives every event the next number of one global sequence', async () => {
    await log.appendEvents(sampleRun('r1'));
    await log.appendEvents(sampleRun('r2'));
    const rows = await log.query<{ seq: bigint }>('SELECT seq FROM events ORDER BY seq');
    expect(rows.map((row) => Number(row.seq))).toEqual(Array.from({ length: 18 }, (_, index) => index + 1));
  });

  it('keeps one sequence when two connections of this process append at the same time (a server and its job)', async () => {
    await withTwoConnections(async (first, second) => {
      await Promise.all(
        Array.from({ length: 10 }, (_, index) =>
          (index % 2 === 0 ? first : second).appendEvents(sampleRun(`writer-${index}`), [], {
            deferProjections: index % 3 === 0,
          }),
        ),
      );
      await second.projectPending();
      const rows = await first.query<{ seq: bigint }>('SELECT seq FROM events ORDER BY seq');
      expect(rows.map((row) => Number(row.seq))).toEqual(Array.from({ length: 90 }, (_, index) => index + 1));
      const runs = await first.query<{ n: bigint }>('SELECT count(*) AS n FROM runs');
      expect(Number(runs[0]?.n)).toBe(10);
    });
  });

  it('adds nothing when the same events arrive again, in another batch or twice in one', async () => {
    await log.appendEvents(sampleRun('r1'));
    const again = await log.appendEvents([...sampleRun('r1'), ...sampleRun('r2'), ...sampleRun('r2')]);
    expect(again).toMatchObject({ appended: 9, duplicates: 18 });
    expect(await log.countEvents()).toBe(18);
    expect(await log.query('SELECT run_id FROM runs ORDER BY run_id')).toEqual([{ run_id: 'r1' }, { run_id: 'r2' }]);
  });

  it('keeps each rejected record once, with file, position, reason and raw text', async () => {
    const reject = {
      format: 'native',
      file: '/data/a.ndjson',
      position: 'line 3',
      reason: 'invalid JSON',
      raw: '{"id":',
    };
    expect((await log.appendEvents([], [reject])).rejected).toBe(1);
    expect((await log.appendEvents([], [reject])).rejected).toBe(0);
    expect(await log.query('SELECT format, file, position, reason, raw FROM ingest_rejects')).toEqual([reject]);
  });

  it('updates a run whose events arrive over several batches, and a rebuild gives the same tables', async () => {
    const events = [...sampleRun('r1'), ...sampleRun('r2', 'passed')];
    for (let start = 0; start < events.length; start += 4) await log.appendEvents(events.slice(start, start + 4));
    const incremental = await snapshot(log);
    expect(incremental.runs).toHaveLength(2);
    expect((incremental.runs as { outcome: string }[]).map((run) => run.outcome).sort()).toEqual(['failed', 'passed']);

    await log.rebuild();
    expect(await snapshot(log)).toEqual(incremental);

    const whole = await EventLog.open(':memory:');
    await whole.appendEvents(events);
    const strip = (tables: Record<string, unknown[]>) =>
      JSON.stringify(tables, (key, value) =>
        key.endsWith('seq') ? undefined : typeof value === 'bigint' ? Number(value) : value,
      );
    expect(strip(await snapshot(whole))).toEqual(strip(incremental));
    whole.close();
  });

  it('keeps the latest event of a step or call that a source logs again, in one batch or across batches', async () => {
    /** r1 logs step 2 again with a new message, reuses call id `b` and reports its result twice. */
    const repeats: TraceEvent[] = [
      {
        id: 'r1#step-2-again',
        runId: 'r1',
        type: 'step-create',
        data: { step: 2, role: 'agent', message: 'Third time.', promptTokens: 5, completionTokens: 1 },
      },
      {
        id: 'r1#call-b-again',
        runId: 'r1',
        type: 'tool-call',
        data: { step: 2, callId: 'b', tool: 'shell', arguments: { command: 'make -B' }, command: 'make -B' },
      },
      {
        id: 'r1#result-b-1',
        runId: 'r1',
        type: 'tool-result',
        data: { step: 2, callId: 'b', output: 'built', exitCode: 0 },
      },
      {
        id: 'r1#result-b-2',
        runId: 'r1',
        type: 'tool-result',
        data: { step: 2, callId: 'b', output: 'failed', exitCode: 1 },
      },
    ];
    const events = [...sampleRun('r1'), ...repeats, ...sampleRun('r2', 'passed')];
    const expectLatest = async (target: EventLog) => {
      expect(await target.query("SELECT step, message FROM steps WHERE run_id = 'r1' ORDER BY step")).toEqual([
        { step: 1, message: 'Build it.' },
        { step: 2, message: 'Third time.' },
      ]);
      expect(
        await target.query(
          "SELECT call_id, command, exit_code, output_excerpt FROM tool_calls WHERE run_id = 'r1' ORDER BY 1",
        ),
      ).toEqual([
        { call_id: 'a', command: 'make', exit_code: 2, output_excerpt: 'make: *** No targets.  Stop.' },
        { call_id: 'b', command: 'make -B', exit_code: 1, output_excerpt: 'failed' },
      ]);
      expect(await target.query("SELECT count(*)::INT AS n FROM tool_calls WHERE run_id = 'r2'")).toEqual([{ n: 2 }]);
    };

    await log.appendEvents(events);
    await expectLatest(log);
    const whole = await snapshot(log);
    await log.rebuild();
    expect(await snapshot(log)).toEqual(whole);

    const split = await EventLog.open(':memory:');
    for (const part of [events.slice(0, 8), events.slice(8, 11), events.slice(11)]) await split.appendEvents(part);
    await expectLatest(split);
    const incremental = await snapshot(split);
    await split.rebuild();
    expect(await snapshot(split)).toEqual(incremental);
    split.close();
  });

  it('shows a run that has not ended as unfinished', async () => {
    await log.appendEvents(sampleRun('r1').slice(0, 4));
    expect(await log.query('SELECT outcome FROM runs')).toEqual([{ outcome: 'unfinished' }]);
  });
});

describe('overlapping appends (an import)', () => {
  const overlapping = { deferProjections: true, overlap: true };

  function batchOf(target: EventLog, events: readonly TraceEvent[], rejects: readonly RejectedRecord[] = []) {
    const batch: StagingBatch = target.createBatch();
    for (const event of events) stageTraceEvent(batch, event);
    for (const reject of rejects) batch.addReject(reject);
    return batch;
  }

  async function seqOrder(target: EventLog) {
    const rows = await target.query<{ seq: bigint; id: string }>('SELECT seq, id FROM events ORDER BY seq');
    return { seqs: rows.map((row) => Number(row.seq)), ids: rows.map((row) => row.id) };
  }

  it('numbers the events of batches started at once in batch order, and gives the same log as one at a time', async () => {
    // Runs cut across batches, as an import's batch boundaries cut them.
    const events = Array.from({ length: 8 }, (_, index) =>
      sampleRun(`r${index}`, index % 2 ? 'passed' : 'failed'),
    ).flat();
    const parts = Array.from({ length: 9 }, (_, index) => events.slice(index * 8, index * 8 + 8));
    const results = await Promise.all(parts.map((part) => log.append(batchOf(log, part), overlapping)));
    expect(results.map((result) => result.appended)).toEqual(parts.map((part) => part.length));
    await log.projectPending();
    const order = await seqOrder(log);
    expect(order.seqs).toEqual(events.map((_, index) => index + 1));
    expect(order.ids).toEqual(events.map((event) => event.id));

    const serial = await EventLog.open(':memory:');
    for (const part of parts) await serial.append(batchOf(serial, part), { deferProjections: true });
    await serial.projectPending();
    expect(await snapshot(log)).toEqual(await snapshot(serial));
    serial.close();
  });

  it('leaves out events and rejects that the append in flight holds already', async () => {
    const reject = { format: 'native', file: '/data/a.ndjson', position: 'line 3', reason: 'invalid JSON', raw: '{' };
    const [first, second, third] = await Promise.all([
      log.append(batchOf(log, sampleRun('r1'), [reject]), overlapping),
      log.append(batchOf(log, [...sampleRun('r1'), ...sampleRun('r2')]), overlapping),
      log.append(batchOf(log, sampleRun('r3'), [reject]), overlapping),
    ]);
    expect(first).toMatchObject({ appended: 9, rejected: 1 });
    expect(second).toMatchObject({ appended: 9, duplicates: 9 });
    expect(third).toMatchObject({ appended: 9, rejected: 0 });
    expect(await log.countEvents()).toBe(27);
    expect(await log.query('SELECT count(*)::INT AS n FROM ingest_rejects')).toEqual([{ n: 1 }]);
    expect((await seqOrder(log)).seqs).toEqual(Array.from({ length: 27 }, (_, index) => index + 1));
  });

  it('fails the appends that continue one that failed, keeps the ones before, and numbers on without a gap', async () => {
    const broken = batchOf(log, sampleRun('r2'));
    broken.seal();
    rmSync(broken.eventsFile);
    const appends = [
      log.append(batchOf(log, sampleRun('r1')), overlapping),
      log.append(broken, overlapping),
      log.append(batchOf(log, sampleRun('r3')), overlapping),
    ];
    const [first, second, third] = await Promise.allSettled(appends);
    expect(first).toMatchObject({ status: 'fulfilled', value: { appended: 9 } });
    expect(second?.status).toBe('rejected');
    // The third waited for the second to commit: it fails with the second's error, having committed nothing.
    expect(third).toEqual(second);
    expect(await log.query('SELECT DISTINCT run_id FROM events')).toEqual([{ run_id: 'r1' }]);

    expect(await log.append(batchOf(log, sampleRun('r3')), overlapping)).toMatchObject({ appended: 9 });
    expect((await seqOrder(log)).seqs).toEqual(Array.from({ length: 18 }, (_, index) => index + 1));
  });

  it('lets no other append come between two it overlaps, and overlaps none queued after another', async () => {
    const first = log.append(batchOf(log, sampleRun('import-1')), overlapping);
    const other = log.appendEvents(sampleRun('server'));
    const second = log.append(batchOf(log, sampleRun('import-2')), overlapping);
    await Promise.all([first, other, second]);
    const runs = await log.query<{ run_id: string }>(
      'SELECT run_id FROM events GROUP BY run_id ORDER BY min(seq), max(seq)',
    );
    expect(runs.map((row) => row.run_id)).toEqual(['import-1', 'server', 'import-2']);
    expect((await seqOrder(log)).seqs).toEqual(Array.from({ length: 27 }, (_, index) => index + 1));
  });

  it('knows the runs another connection appended and has not projected yet, and adds none of their events again', async () => {
    await withTwoConnections(async (job, server) => {
      expect(await job.appendEvents(sampleRun('r1'), [], { deferProjections: true })).toMatchObject({ appended: 9 });
      expect(await server.appendEvents(sampleRun('r1'))).toMatchObject({ appended: 0, duplicates: 9 });
      expect(await server.countEvents()).toBe(9);
    });
  });
});

describe('opening a database', () => {
  it('says the file is damaged instead of failing with a stack trace', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'selfharness-'));
    const file = join(folder, 'broken.duckdb');
    writeFileSync(file, 'this is not a database'.repeat(1000));
    const error = await EventLog.open(file).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SystemError);
    expect((error as Error).message).toContain(file);
    expect((error as Error).message).toMatch(/damaged or not a selfharness database/);
  });

  it('names a missing folder', async () => {
    const error = await EventLog.open('/nonexistent-folder/x.duckdb').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(/folder \/nonexistent-folder does not exist/);
  });
});
