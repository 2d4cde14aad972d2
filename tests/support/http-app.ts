import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import { installAnalytics } from '../../analytics/index.js';
import { type AppOptions, createApp } from '../../api/index.js';
import { EventLog } from '../../core/index.js';

/** An app served over real HTTP on a free loopback port. */
export interface ServedApp {
  /** `http://127.0.0.1:PORT`, without a trailing slash. */
  readonly url: string;
  /** Closes open connections (streams included) and the server. */
  stop(): Promise<void>;
}

/** Serves `app` on a free port of 127.0.0.1, as `selfharness serve` does, for tests that go over HTTP. */
export function serveApp(app: Hono): Promise<ServedApp> {
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) =>
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        stop: () =>
          new Promise<void>((done) => {
            (server as { closeAllConnections?: () => void }).closeAllConnections?.();
            server.close(() => done());
          }),
      }),
    );
  });
}

/** A fresh log in a temporary folder, served by the API over HTTP; `stop` closes both and removes the folder. */
export interface ServedLog extends ServedApp {
  readonly log: EventLog;
}

export async function serveNewLog(prefix: string, options: Omit<AppOptions, 'log'> = {}): Promise<ServedLog> {
  const folder = mkdtempSync(join(tmpdir(), `selfharness-${prefix}-`));
  const log = await EventLog.open(join(folder, 'log.duckdb'));
  await installAnalytics(log.database);
  const served = await serveApp(createApp({ log, ...options }));
  return {
    log,
    url: served.url,
    stop: async () => {
      await served.stop();
      log.close();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}
