import { rmSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { groupedAppends, prepareEvents } from '../../api/ingest.js';
import { EventLog } from '../../core/index.js';

/**
 * Requests that arrive while the log is busy are appended together in one transaction. Each still gets the receipt it
 * would get appended alone, in arrival order, and a group that fails acknowledges nothing.
 */

let log: EventLog;

beforeEach(async () => {
  log = await EventLog.open(':memory:');
});
afterEach(() => log.close());

function lines(runId: string, from: number, to: number): string {
  const out: string[] = [];
  for (let step = from; step <= to; step++) {
    out.push(
      JSON.stringify({
        id: `${runId}#${step}`,
        runId,
        type: 'step-create',
        data: { step, role: 'agent', message: `step ${step}` },
      }),
    );
  }
  return out.join('\n');
}

/** A queue that holds every task until `release`, so that the requests sent meanwhile wait together. */
function heldQueue() {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  let tail: Promise<unknown> = gate;
  const exclusive = <T>(task: () => Promise<T>): Promise<T> => {
    const result = tail.then(task);
    tail = result.catch(() => undefined);
    return result;
  };
  return { exclusive, release: () => open() };
}

describe('grouped appends of POST /v1/events', () => {
  it('appends the waiting requests in one transaction, each with its own receipt as if appended alone in order', async () => {
    const queue = heldQueue();
    const appends = groupedAppends(log, queue.exclusive, { deferProjections: true });
    let transactions = 0;
    const appendAll = log.appendAll.bind(log);
    log.appendAll = (batches, options) => {
      transactions++;
      return appendAll(batches, options);
    };

    const first = appends.append(prepareEvents(log, lines('r1', 1, 10), 'first'));
    // Half of these are in the first request: they are its duplicates, not new events.
    const second = appends.append(prepareEvents(log, lines('r1', 6, 15), 'second'));
    const third = appends.append(prepareEvents(log, `${lines('r2', 1, 3)}\n{"id":"broken"\n`, 'third'));
    queue.release();

    expect(await first).toEqual({ accepted: 10, duplicates: 0, rejected: [] });
    expect(await second).toEqual({ accepted: 5, duplicates: 5, rejected: [] });
    const thirdReceipt = await third;
    expect(thirdReceipt).toMatchObject({ accepted: 3, duplicates: 0 });
    expect(thirdReceipt.rejected).toEqual([{ line: 4, reason: expect.stringContaining('invalid JSON') }]);
    expect(transactions).toBe(1);

    // One contiguous sequence, in arrival order.
    const events = await log.query<{ seq: bigint; id: string }>('SELECT seq, id FROM events ORDER BY seq');
    expect(events.map((event) => Number(event.seq))).toEqual(Array.from({ length: 18 }, (_, index) => index + 1));
    expect(events.map((event) => event.id).slice(0, 2)).toEqual(['r1#1', 'r1#2']);
    expect(events.at(-1)?.id).toBe('r2#3');
    expect(await log.query('SELECT position FROM ingest_rejects')).toEqual([{ position: 'line 4' }]);
  });

  it('fails every request of a group that cannot be appended, and keeps none of its events', async () => {
    const queue = heldQueue();
    const appends = groupedAppends(log, queue.exclusive, { deferProjections: true });
    const first = appends.append(prepareEvents(log, lines('r1', 1, 5), 'first'));
    const broken = prepareEvents(log, lines('r2', 1, 5), 'second');
    // The second request's staged events vanish (as on a full or failing disk): DuckDB cannot read them.
    rmSync(broken.batch.eventsFile);
    const second = appends.append(broken);
    queue.release();
    await expect(first).rejects.toThrow();
    await expect(second).rejects.toThrow();
    expect(await log.countEvents()).toBe(0);

    // The log goes on, numbering from where it is.
    queue.release();
    expect(await appends.append(prepareEvents(log, lines('r3', 1, 2), 'third'))).toMatchObject({ accepted: 2 });
    const seqs = await log.query<{ seq: bigint }>('SELECT seq FROM events ORDER BY seq');
    expect(seqs.map((row) => Number(row.seq))).toEqual([1, 2]);
  });

  it('starts a new group for the requests that arrive while one is being appended', async () => {
    const queue = heldQueue();
    const appends = groupedAppends(log, queue.exclusive, { deferProjections: true });
    const groups: number[] = [];
    const appendAll = log.appendAll.bind(log);
    log.appendAll = (batches, options) => {
      groups.push(batches.length);
      return appendAll(batches, options);
    };
    const first = appends.append(prepareEvents(log, lines('r1', 1, 5), 'first'));
    queue.release();
    await Promise.resolve();
    const second = appends.append(prepareEvents(log, lines('r2', 1, 5), 'second'));
    const third = appends.append(prepareEvents(log, lines('r3', 1, 5), 'third'));
    await Promise.all([first, second, third]);
    expect(groups.reduce((total, size) => total + size, 0)).toBe(3);
    expect(groups.length).toBeGreaterThanOrEqual(2);
    expect(await log.countEvents()).toBe(15);
  });
});
