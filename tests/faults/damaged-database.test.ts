import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLog } from '../../core/index.js';
import { runCli } from '../support/cli.js';
import { sampleRun } from '../support/events.js';

/**
 * A database file that is damaged, or a --db path that cannot be one: every command says so in one line with what to
 * do, exits non-zero, and never prints a stack trace.
 */

const folder = mkdtempSync(join(tmpdir(), 'selfharness-damaged-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

function expectOneClearLine(result: { code: number | null; stderr: string }, pattern: RegExp): void {
  expect(result.code).not.toBe(0);
  const lines = result.stderr.trim().split('\n');
  expect(lines[0]).toMatch(/^error: /);
  expect(lines[0]).toMatch(pattern);
  expect(result.stderr).not.toMatch(/^\s+at /m);
}

describe.concurrent('a damaged database or a wrong path', () => {
  const garbage = join(folder, 'garbage.duckdb');
  const truncated = join(folder, 'truncated.duckdb');

  beforeAll(async () => {
    writeFileSync(garbage, 'this is not a database\n'.repeat(1000));
    const log = await EventLog.open(truncated);
    await log.appendEvents(sampleRun('damaged-1'));
    log.close();
    const size = readFileSync(truncated).length;
    truncateSync(truncated, Math.floor(size / 3));
  });

  for (const [name, command] of [
    ['status', ['status']],
    ['ingest', ['ingest', join(import.meta.dirname, '../fixtures/native')]],
    ['mine', ['mine', '--mode', 'signature']],
  ] as const) {
    it(`${name}: a file that is not a database`, async () => {
      expectOneClearLine(await runCli(['--db', garbage, ...command]), /garbage\.duckdb.*(damaged|not a selfharness)/);
    });

    it(`${name}: a database cut short`, async () => {
      expectOneClearLine(
        await runCli(['--db', truncated, ...command]),
        /truncated\.duckdb.*(damaged|not a selfharness)/,
      );
    });
  }

  it('names a folder that does not exist, and a directory given as the file', async () => {
    expectOneClearLine(
      await runCli(['--db', join(folder, 'missing', 'log.duckdb'), 'status']),
      /folder .*missing does not exist/,
    );
    const directory = join(folder, 'a-directory');
    mkdirSync(directory);
    expectOneClearLine(await runCli(['--db', directory, 'ingest', 'x']), /it is a directory/);
  });

  it('the server refuses to start on a damaged database, in one line', async () => {
    expectOneClearLine(await runCli(['--db', garbage, 'serve', '--port', '0']), /garbage\.duckdb.*damaged/);
  });
});
