import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli, startServe } from '../support/cli.js';
import { sampleRun } from '../support/events.js';

let folder: string;

beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), 'selfharness-serve-'));
});

afterEach(() => {
  rmSync(folder, { recursive: true, force: true });
});

describe('selfharness serve', () => {
  it('serves the API on a loopback port: events posted over HTTP are in the log after it stops', async () => {
    const database = join(folder, 'log.duckdb');
    const { child, url: address, exited } = await startServe(database);
    try {
      const body = `${sampleRun('served-run', 'failed')
        .map((event) => JSON.stringify(event))
        .join('\n')}\n`;
      const posted = await fetch(`${address}/v1/events`, { method: 'POST', body });
      expect(await posted.json()).toEqual({ accepted: 9, duplicates: 0, rejected: [] });
      const runs = (await (await fetch(`${address}/v1/runs`)).json()) as {
        runs: { run_id: string; outcome: string }[];
      };
      expect(runs.runs.map((run) => [run.run_id, run.outcome])).toEqual([['served-run', 'failed']]);
      const refused = await fetch(`${address}/v1/sql`, { method: 'POST', body: 'DROP TABLE events' });
      expect(refused.status).toBe(400);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    const counted = await runCli(['--db', database, '--json', 'sql', 'SELECT count(*) AS n FROM events']);
    expect(JSON.parse(counted.stdout)).toEqual([{ n: 9 }]);
  }, 60_000);

  it('refuses to listen beyond loopback without a token, and says how to give one', async () => {
    const result = await runCli(['--db', join(folder, 'log.duckdb'), 'serve', '--host', '0.0.0.0', '--port', '0'], {
      SELFHARNESS_API_TOKEN: '',
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Refusing to serve on 0.0.0.0 without a token');
    expect(result.stderr).toContain('SELFHARNESS_API_TOKEN');
  }, 30_000);
});
