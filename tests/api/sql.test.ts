import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { installAnalytics } from '../../analytics/index.js';
import { createApp, restrictServerFileAccess } from '../../api/index.js';
import { EventLog } from '../../core/index.js';
import { sampleRun } from '../support/events.js';
import { serveApp } from '../support/http-app.js';

let folder: string;
let log: EventLog;

async function openLog(): Promise<void> {
  folder = mkdtempSync(join(tmpdir(), 'selfharness-api-sql-'));
  log = await EventLog.open(join(folder, 'log.duckdb'));
  await installAnalytics(log.database);
}

function closeLog(): void {
  log.close();
  rmSync(folder, { recursive: true, force: true });
}

/** Starts the app on a free loopback port, as `selfharness serve` does. */
const startServer = serveApp;

async function postSql(url: string, sql: string, query = ''): Promise<Response> {
  return fetch(`${url}/v1/sql${query}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ sql }),
  });
}

async function count(sql: string): Promise<number> {
  return Number((await log.query<{ n: bigint }>(sql))[0]?.n ?? 0);
}

const hostFile = join(tmpdir(), `selfharness-api-sql-host-${process.pid}.csv`);

describe('POST /v1/sql refuses everything but one read-only statement, over HTTP', () => {
  let server: { url: string; stop: () => Promise<void> };
  beforeAll(async () => {
    await openLog();
    await log.appendEvents(sampleRun('run-a', 'failed'));
    server = await startServer(createApp({ log }));
  });
  afterAll(async () => {
    await server.stop();
    closeLog();
  });

  it.each([
    ['INSERT', "INSERT INTO ingest_rejects VALUES ('a', 'x', NULL, NULL, 'r', NULL, now())", /not a SELECT/],
    ['UPDATE', "UPDATE events SET type = 'x'", /not a SELECT/],
    ['DELETE', 'DELETE FROM events', /not a SELECT/],
    ['CREATE', 'CREATE TABLE stolen AS SELECT 1', /not a SELECT/],
    ['DROP', 'DROP TABLE events', /not a SELECT/],
    ['COPY … TO', `COPY (SELECT * FROM runs) TO '${hostFile}'`, /not a SELECT/],
    ['EXPLAIN ANALYZE of a COPY', `EXPLAIN ANALYZE COPY runs TO '${hostFile}'`, /not a SELECT/],
    ['read_csv', "SELECT * FROM read_csv('/etc/passwd')", /read_csv\(\) reads files/],
    ['read_text', "SELECT content FROM read_text('/etc/hostname')", /read_text\(\) reads files/],
    ['read_blob', "SELECT content FROM read_blob('/etc/hostname')", /read_blob\(\) reads files/],
    ['read_json', "SELECT * FROM read_json('/etc/x.json')", /read_json\(\) reads files/],
    ['read_parquet', "SELECT * FROM read_parquet('/etc/x.parquet')", /read_parquet\(\) reads files/],
    ['a nested file read', "SELECT (SELECT count(*) FROM read_json('/etc/x.json')) AS n", /read_json\(\) reads files/],
    ['glob', "SELECT * FROM glob('/etc/*')", /glob\(\) reads files/],
    ['a file as a table', "SELECT * FROM '/etc/passwd'", /"\/etc\/passwd" is not a table/],
    ['a file path to DESCRIBE', "DESCRIBE '/etc/passwd'", /"\/etc\/passwd" is not a table/],
    ['ATTACH', "ATTACH '/tmp/other.duckdb' AS other", /not a SELECT/],
    ['INSTALL', 'INSTALL httpfs', /not a SELECT/],
    ['LOAD', 'LOAD httpfs', /not a SELECT/],
    ['PRAGMA', 'PRAGMA database_list', /not a SELECT/],
    ['SET', 'SET enable_external_access = true', /not a SELECT/],
    ['CALL', 'CALL pragma_version()', /not a SELECT/],
    ['two statements', 'SELECT 1; SELECT 2', /Got 2 statements/],
    [
      'a read hidden after a harmless statement',
      "SELECT 1; SELECT * FROM read_text('/etc/hostname')",
      /Got 2 statements/,
    ],
    ['getenv', "SELECT getenv('HOME') AS home", /getenv\(\) reads files or other sources/],
  ])('refuses %s with a 400 problem that says what is allowed', async (_name, statement, reason) => {
    const response = await postSql(server.url, statement);
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    const body = (await response.json()) as { title: string; detail: string };
    expect(body.title).toBe('Query refused');
    expect(body.detail).toMatch(/Only one read-only statement is allowed/);
    expect(body.detail).toMatch(reason);
    expect(await count("SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'stolen'")).toBe(0);
    expect(await count('SELECT count(*) AS n FROM ingest_rejects')).toBe(0);
    expect(await count("SELECT count(*) AS n FROM events WHERE type = 'x'")).toBe(0);
    expect(await count('SELECT count(*) AS n FROM events')).toBe(9);
    expect(existsSync(hostFile)).toBe(false);
  });
});

describe('a database with restrictServerFileAccess', () => {
  beforeEach(openLog);
  afterEach(closeLog);

  it('serves queries and appends, while DuckDB itself refuses host files on any connection', async () => {
    await restrictServerFileAccess(log);
    const app = createApp({ log });
    const server = await startServer(app);
    try {
      const posted = await fetch(`${server.url}/v1/events`, {
        method: 'POST',
        body: sampleRun('run-a', 'failed')
          .map((event) => JSON.stringify(event))
          .join('\n'),
      });
      expect(((await posted.json()) as { accepted: number }).accepted).toBe(9);
      const rows = await postSql(server.url, 'SELECT run_id, outcome FROM runs');
      expect(((await rows.json()) as { rows: unknown[] }).rows).toEqual([{ run_id: 'run-a', outcome: 'failed' }]);
      const refused = await postSql(server.url, "SELECT * FROM read_text('/etc/hostname')");
      expect(refused.status).toBe(400);
    } finally {
      await server.stop();
    }
    // A query that got past the text checks would run on a connection like this one: DuckDB refuses the files.
    const other = await log.database.connect();
    try {
      for (const statement of [
        "SELECT content FROM read_text('/etc/hostname')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
        `COPY (SELECT 1) TO '${hostFile}'`,
        "ATTACH '/tmp/selfharness-api-sql-other.duckdb' AS other",
      ]) {
        await expect(other.all(statement), statement).rejects.toThrow(
          /Permission Error|disabled|not allowed|does not exist/i,
        );
      }
      await expect(other.run('SET enable_external_access = true')).rejects.toThrow(
        /Cannot change|while database is running/i,
      );
    } finally {
      other.close();
    }
    expect(existsSync(hostFile)).toBe(false);
  });
});

describe('POST /v1/sql on a connection of its own', () => {
  beforeEach(openLog);
  afterEach(closeLog);

  it('answers while the log connection holds an open write transaction, seeing only committed events', async () => {
    await log.appendEvents(sampleRun('run-committed', 'passed'));
    const server = await startServer(createApp({ log }));
    await log.database.run('BEGIN TRANSACTION');
    try {
      await log.database.run(
        "INSERT INTO events SELECT seq + 1000, id || '-uncommitted', type, run_id, time, source_format, source_file, source_position, data, recorded_at FROM events",
      );
      const started = Date.now();
      const response = await postSql(server.url, 'SELECT count(*) AS n FROM events');
      expect(await response.json()).toEqual({ columns: ['n'], rows: [{ n: 9 }], truncated: false });
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await log.database.run('ROLLBACK');
      await server.stop();
    }
  });

  it('interrupts only the query that ran past the timeout, while the log connection keeps working', async () => {
    const server = await startServer(createApp({ log, sqlTimeoutMs: 300 }));
    try {
      const slow = postSql(server.url, 'SELECT count(*) FROM range(10000000000) a, range(1000) b');
      const appended = await log.appendEvents(sampleRun('run-during-query', 'failed'));
      expect(appended.appended).toBe(9);
      const response = await slow;
      expect(response.status).toBe(504);
      expect(((await response.json()) as { detail: string }).detail).toMatch(/longer than 300 ms and was interrupted/);
      expect(await count('SELECT count(*) AS n FROM events')).toBe(9);
      const next = await postSql(server.url, 'SELECT count(*) AS n FROM runs');
      expect(((await next.json()) as { rows: unknown[] }).rows).toEqual([{ n: 1 }]);
    } finally {
      await server.stop();
    }
  });

  it('cuts a result at ?limit=, says so in X-Truncated, and refuses a limit beyond 1,000,000', async () => {
    const server = await startServer(createApp({ log }));
    try {
      const cut = await postSql(server.url, 'SELECT * FROM range(5000) t(i)', '?limit=2500');
      expect(cut.headers.get('x-truncated')).toBe('true');
      const body = (await cut.json()) as { rows: { i: number }[]; truncated: boolean };
      expect(body.rows.length).toBe(2500);
      expect(body.rows.at(-1)).toEqual({ i: 2499 });
      expect(body.truncated).toBe(true);
      const whole = await postSql(server.url, 'SELECT * FROM range(5000) t(i)', '?limit=5000&format=csv');
      expect(whole.headers.get('x-truncated')).toBe('false');
      expect((await whole.text()).trim().split('\n').length).toBe(5001);
      const refused = await postSql(server.url, 'SELECT 1', '?limit=1000001');
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as { detail: string }).detail).toMatch(/limit=1000001 must be a whole number/);
    } finally {
      await server.stop();
    }
  });
});
