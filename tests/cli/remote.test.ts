import { spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acceptCliCommands } from '../../api/cli-route.js';
import { createApp } from '../../api/index.js';
import { EventLog } from '../../core/index.js';
import { type CliResult, runCli, type ServeProcess, startServe } from '../support/cli.js';
import { weaknessEvents } from '../support/mining-log.js';

const fixtures = resolve(import.meta.dirname, '../fixtures');
/** Scripted runs with known weaknesses, ingested beside the native fixture (7 events, 2 runs, 3 rejects). */
const weaknesses = weaknessEvents();
const weaknessRuns = new Set(weaknesses.map((event) => event.runId)).size;
/** The server's environment: no API token inherited from the shell running the tests. */
const serverEnvironment = { SELFHARNESS_API_TOKEN: '' };

let folder: string;
/** Everything the command line printed in these tests: none of it may speak of a lock. */
const outputs: string[] = [];

beforeAll(() => {
  folder = mkdtempSync(join(tmpdir(), 'selfharness-remote-'));
});

afterAll(() => {
  rmSync(folder, { recursive: true, force: true });
});

async function cli(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  const result = await runCli(args, { ...serverEnvironment, ...env });
  outputs.push(result.stdout, result.stderr);
  return result;
}

/** Starts `serve --port 0` with the test's environment and waits for its address. */
function startServer(database: string, extra: readonly string[] = []): Promise<ServeProcess> {
  return startServe(database, extra, serverEnvironment);
}

describe('selfharness commands while `selfharness serve` owns the database', () => {
  let database: string;
  let server: Awaited<ReturnType<typeof startServer>>;

  beforeAll(async () => {
    database = join(folder, 'log.duckdb');
    server = await startServer(database);
  }, 30_000);

  afterAll(() => {
    server.child.kill('SIGTERM');
  });

  it('leaves a discovery file beside the database, readable by its user alone', () => {
    const file = `${database}.server.json`;
    const discovery = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    expect(discovery).toMatchObject({ url: server.url, pid: server.child.pid });
    expect(discovery.token).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('ingests through the server and prints the summary', async () => {
    const traces = join(folder, 'weaknesses.ndjson');
    writeFileSync(traces, weaknesses.map((event) => `${JSON.stringify(event)}\n`).join(''));
    const result = await cli(['--db', database, 'ingest', join(fixtures, 'native'), traces]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(
      `${7 + weaknesses.length} new events (0 already in the log) from ${2 + weaknessRuns} runs`,
    );
    expect(result.stdout).toContain('line 4: invalid JSON');
  });

  it('answers sql --json with parseable JSON (a debug line on stderr only when asked); status and mine work', async () => {
    const query = await cli(['--db', database, '--json', 'sql', 'select count(*) as n from events'], {
      SELFHARNESS_DEBUG: '1',
    });
    expect(query.code, query.stderr).toBe(0);
    expect(JSON.parse(query.stdout)).toEqual([{ n: 7 + weaknesses.length }]);
    expect(query.stderr.trim().split('\n')).toEqual([
      `selfharness: running \`sql\` through the server at ${server.url} (pid ${server.child.pid}), which owns ${database}`,
    ]);

    const status = await cli(['--db', database, 'status']);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(`${database}: ${7 + weaknesses.length} events, 3 rejected records`);

    // Mining hands DuckDB its clusters through a staged file: the server's DuckDB may read it.
    const mine = await cli(['--db', database, 'mine', '--mode', 'signature']);
    expect(mine.code, mine.stderr).toBe(0);
    expect(mine.stdout).toMatch(/#\d {2}Repeated failed command: `make test`/);
    expect(mine.stdout).toMatch(/#\d {2}Missing dependency: `python3`/);
  }, 40_000);

  it("resolves relative paths against the client's working folder, and takes the database from SELFHARNESS_DB", async () => {
    const client = join(folder, 'client');
    mkdirSync(join(client, 'traces'), { recursive: true });
    copyFileSync(join(fixtures, 'atif', 'multi-step.json'), join(client, 'traces', 'multi-step.json'));
    const ingested = await runCli(['--db', '../log.duckdb', '--json', 'ingest', 'traces'], serverEnvironment, {
      cwd: client,
    });
    outputs.push(ingested.stdout, ingested.stderr);
    expect(ingested.code, ingested.stderr).toBe(0);
    const summary = JSON.parse(ingested.stdout) as { totals: { runs: number; appended: number } };
    expect(summary.totals.runs).toBe(1);
    expect(summary.totals.appended).toBeGreaterThan(0);

    const counted = await runCli(
      ['--json', 'sql', 'select count(*) as n from runs'],
      { ...serverEnvironment, SELFHARNESS_DB: '../log.duckdb' },
      { cwd: client },
    );
    outputs.push(counted.stdout, counted.stderr);
    expect(counted.code, counted.stderr).toBe(0);
    expect(JSON.parse(counted.stdout)).toEqual([{ n: 3 + weaknessRuns }]);
    expect(counted.stderr).toBe('');
  }, 30_000);

  it('refuses export with a message that says what to do, and writes nothing', async () => {
    const target = join(folder, 'parquet');
    const result = await cli(['--db', database, 'export', '--parquet', target]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`error: Cannot export while \`selfharness serve\` (pid ${server.child.pid})`);
    expect(result.stderr).toContain('Stop the server');
    expect(result.stderr).toContain('POST /v1/sql');
    expect(existsSync(target)).toBe(false);
  });

  it('keeps sql read-only through the server, as on the file: writes are refused and change nothing', async () => {
    const before = await cli(['--db', database, '--json', 'sql', 'select count(*) as n from events']);
    for (const statement of [
      'create table scratch (a int)',
      'delete from events',
      "update runs set outcome = 'passed'",
    ]) {
      const result = await cli(['--db', database, 'sql', statement]);
      expect(result.code, statement).not.toBe(0);
      expect(result.stderr, statement).toMatch(/^error: .*read-only/);
    }
    const after = await cli(['--db', database, '--json', 'sql', 'select count(*) as n from events']);
    expect(after.stdout).toBe(before.stdout);
  }, 30_000);

  it('refuses a second server on the same database', async () => {
    const result = await cli(['--db', database, 'serve', '--port', '0']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`A selfharness server already serves ${database} at ${server.url}`);
  });

  it('answers POST /v1/cli with the local token only, as NDJSON output lines then the exit code; serve is refused', async () => {
    const request = (token: string, argv: string[]) =>
      fetch(`${server.url}/v1/cli`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ argv: ['node', 'selfharness', ...argv], cwd: folder }),
      });
    const wrong = await request('wrong', ['status']);
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { detail: string }).detail).toContain('local token');

    const { token } = JSON.parse(readFileSync(`${database}.server.json`, 'utf8')) as { token: string };
    const status = await request(token, ['--db', database, '--json', 'status']);
    expect(status.headers.get('content-type')).toContain('application/x-ndjson');
    const lines = (await status.text())
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { stream?: string; text?: string; exit?: number });
    expect(lines.at(-1)).toEqual({ exit: 0 });
    const printed = lines
      .filter((line) => line.stream === 'stdout')
      .map((line) => line.text)
      .join('');
    const summary = JSON.parse(printed) as { database: string; events: number; rejects: number };
    expect(summary).toMatchObject({ database, rejects: 3 });
    // The native fixture, the scripted runs, and the ATIF trajectory ingested from the client's folder.
    expect(summary.events).toBeGreaterThan(7 + weaknesses.length);

    const serve = await (await request(token, ['--db', database, 'serve'])).text();
    expect(serve).toContain('cannot run inside the server');
    expect(serve.trim().split('\n').at(-1)).toBe(JSON.stringify({ exit: 2 }));
  });

  it('after SIGTERM, the discovery file is gone and the same commands use the file', async () => {
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(existsSync(`${database}.server.json`)).toBe(false);

    const query = await cli([
      '--db',
      database,
      '--json',
      'sql',
      'select (select count(*) from runs) as runs, (select count(*) from weakness_clusters) as clusters',
    ]);
    expect(query.code, query.stderr).toBe(0);
    expect(JSON.parse(query.stdout)).toEqual([{ runs: 3 + weaknessRuns, clusters: 2 }]);
    const ingested = await cli(['--db', database, 'ingest', join(fixtures, 'native')]);
    expect(ingested.code, ingested.stderr).toBe(0);
    expect(ingested.stdout).toContain('0 new events (7 already in the log)');
    expect(outputs.join('\n')).not.toMatch(/lock/i);
  }, 30_000);
});

describe('a discovery file left behind', () => {
  let database: string;

  beforeAll(async () => {
    database = join(folder, 'stale.duckdb');
    const log = await EventLog.open(database);
    log.close();
  });

  it('is removed when its server process is gone, and the command uses the file', async () => {
    const gone = spawn(process.execPath, ['-e', '']);
    const pid = gone.pid as number;
    await new Promise((resolvePromise) => gone.on('close', resolvePromise));
    const file = `${database}.server.json`;
    writeFileSync(file, JSON.stringify({ url: 'http://127.0.0.1:9', pid, token: 'stale', startedAt: '' }));
    const result = await cli(['--db', database, '--json', 'sql', 'select count(*) as n from events']);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([{ n: 0 }]);
    expect(existsSync(file)).toBe(false);
  });

  it('is removed when nothing answers at its address, though its process id is taken', async () => {
    const closed = createServer();
    await new Promise<void>((resolvePromise) => closed.listen(0, '127.0.0.1', resolvePromise));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolvePromise) => closed.close(resolvePromise));
    const file = `${database}.server.json`;
    writeFileSync(
      file,
      JSON.stringify({ url: `http://127.0.0.1:${port}`, pid: process.pid, token: 'stale', startedAt: '' }),
    );
    const result = await cli(['--db', database, 'status']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`${database}: 0 events`);
    expect(existsSync(file)).toBe(false);
  });

  it('a server that stops mid-command gives a clear error, not a lock error', async () => {
    // A stand-in for a server killed while a command runs: it answers the first line of output, then drops the line.
    const dying = createServer((request, response) => {
      request.resume();
      response.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
      response.write(`${JSON.stringify({ stream: 'stdout', text: 'started\n' })}\n`, () => response.destroy());
    });
    await new Promise<void>((resolvePromise) => dying.listen(0, '127.0.0.1', resolvePromise));
    const url = `http://127.0.0.1:${(dying.address() as AddressInfo).port}`;
    writeFileSync(`${database}.server.json`, JSON.stringify({ url, pid: process.pid, token: 't', startedAt: '' }));
    try {
      const result = await cli(['--db', database, 'status']);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('started\n');
      expect(result.stderr).toContain(
        `error: the selfharness server at ${url} (pid ${process.pid}) stopped before the command finished`,
      );
      expect(result.stderr).toContain('Run the command again');
    } finally {
      dying.close();
      rmSync(`${database}.server.json`, { force: true });
    }
  });
});

describe('POST /v1/cli', () => {
  it('refuses a client that is not on loopback, and an app not started by serve', async () => {
    const log = await EventLog.open(':memory:');
    try {
      const body = JSON.stringify({ argv: ['node', 'selfharness', 'status'], cwd: folder });
      const request = { method: 'POST', headers: { Authorization: 'Bearer local' }, body };
      const plain = createApp({ log });
      expect((await plain.request('/v1/cli', request)).status).toBe(404);

      acceptCliCommands(log, 'local');
      // Called without a Node server, the request has no loopback address to show.
      const refused = await createApp({ log }).request('/v1/cli', request);
      expect(refused.status).toBe(403);
      expect(((await refused.json()) as { detail: string }).detail).toContain('from this machine only');
    } finally {
      log.close();
    }
  });
});

describe('a server started with an API token', () => {
  it('still runs the local CLI, which uses its own token; other clients need the API token', async () => {
    const database = join(folder, 'with-token.duckdb');
    const server = await startServer(database, ['--token', 'api-secret']);
    try {
      const status = await cli(['--db', database, '--json', 'sql', 'select 41 + 1 as answer']);
      expect(status.code, status.stderr).toBe(0);
      expect(JSON.parse(status.stdout)).toEqual([{ answer: 42 }]);
      expect((await fetch(`${server.url}/v1/runs`)).status).toBe(401);
      const authorized = await fetch(`${server.url}/v1/runs`, { headers: { Authorization: 'Bearer api-secret' } });
      expect(authorized.status).toBe(200);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  }, 30_000);
});
