import { randomBytes } from 'node:crypto';
import { serve } from '@hono/node-server';
import type { Command } from 'commander';
import { installAnalytics } from '../../analytics/index.js';
import { acceptCliCommands } from '../../api/cli-route.js';
import { createApp, DEFAULT_BODY_LIMIT_BYTES, restrictServerFileAccess } from '../../api/index.js';
import { cancelRunningJobs } from '../../api/jobs.js';
import { EventLog, UserError } from '../../core/index.js';
import { databasePath, type GlobalOptions } from '../context.js';
import {
  discoveryFilePath,
  findServer,
  isServerAnswering,
  removeDiscoveryFile,
  writeDiscoveryFile,
} from '../remote.js';

interface ServeOptions {
  port: string;
  host: string;
  token?: string;
  bodyLimit: string;
  sqlTimeout: string;
}

/** How much write-ahead log a server gathers before a checkpoint. */
const SERVER_CHECKPOINT_THRESHOLD = '64MB';

/** Hosts that only this machine can reach; any other needs a token. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
}

export function registerServe(program: Command, globals: () => GlobalOptions): void {
  program
    .command('serve')
    .description('Serve the HTTP API over the log (events and OTLP in, runs, SQL, weaknesses, harness versions out)')
    .option('--port <port>', 'port to listen on (0: any free port)', '8787')
    .option('--host <host>', 'address to bind; beyond loopback a token is required', '127.0.0.1')
    .option('--token <token>', 'require `Authorization: Bearer <token>` (default: $SELFHARNESS_API_TOKEN)')
    .option('--body-limit <bytes>', 'largest request body', String(DEFAULT_BODY_LIMIT_BYTES))
    .option('--sql-timeout <ms>', 'interrupt POST /v1/sql queries after this long', '30000')
    .action(async (options: ServeOptions) => {
      const token = options.token ?? (process.env.SELFHARNESS_API_TOKEN || undefined);
      if (!isLoopbackHost(options.host) && token === undefined) {
        throw new UserError(
          `Refusing to serve on ${options.host} without a token: anyone who reaches it could read and write the log. Set SELFHARNESS_API_TOKEN or pass --token, or bind 127.0.0.1.`,
        );
      }
      const port = wholeNumber(options.port, '--port');
      const database = databasePath(globals());
      await refuseSecondServer(database);
      const log = await EventLog.open(database);
      try {
        await installAnalytics(log.database);
        // Posted events reach the log through its write-ahead log; folding it into the file (a checkpoint) less often
        // costs less per event under a steady stream (DuckDB's default is 16 MB). A crash replays at most this much.
        await log.database.run(`SET checkpoint_threshold = '${SERVER_CHECKPOINT_THRESHOLD}'`);
        await restrictServerFileAccess(log);
      } catch (error) {
        log.close();
        throw error;
      }
      const app = createApp({
        log,
        ...(token !== undefined ? { token } : {}),
        bodyLimitBytes: wholeNumber(options.bodyLimit, '--body-limit'),
        sqlTimeoutMs: wholeNumber(options.sqlTimeout, '--sql-timeout'),
      });
      // The command line finds this server through the discovery file and runs its commands here (POST /v1/cli),
      // with a token of its own: the API token, if any, stays the user's.
      const cliToken = randomBytes(32).toString('hex');
      acceptCliCommands(log, cliToken);
      const forgetServer = () => removeDiscoveryFile(log.database.path, process.pid);
      process.once('exit', forgetServer);
      try {
        await new Promise<void>((resolvePromise, reject) => {
          const server = serve({ fetch: app.fetch, port, hostname: options.host }, (info) => {
            const host = info.family === 'IPv6' ? `[${info.address}]` : info.address;
            announceServer(log.database.path, localUrl(info.address, info.family, info.port), cliToken);
            console.log(`selfharness API on http://${host}:${info.port} (database ${log.database.path})`);
            console.error('Press Ctrl-C to stop.');
          });
          server.on('error', (error) => {
            log.close();
            reject(new UserError(`Cannot listen on ${options.host}:${port}: ${error.message}`, { cause: error }));
          });
          const stop = () => {
            // Commands started from now on use the file; the ones running here finish first. Improve jobs stop at
            // their next step (their followers get the end of the stream), then idle connections are closed.
            forgetServer();
            void cancelRunningJobs(log.database.path).finally(() => {
              server.close(() => {
                log.close();
                resolvePromise();
              });
              if ('closeIdleConnections' in server) server.closeIdleConnections();
            });
          };
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
      } finally {
        forgetServer();
        process.off('exit', forgetServer);
      }
    });
}

/** Refuses to start when a live server already owns the database; a stale discovery file is removed. */
async function refuseSecondServer(database: string): Promise<void> {
  const running = findServer(database);
  if (running === undefined) return;
  if (!(await isServerAnswering(running))) {
    removeDiscoveryFile(database, running.pid);
    return;
  }
  throw new UserError(
    `A selfharness server already serves ${database} at ${running.url} (pid ${running.pid}). Use it (selfharness commands on this database run through it), stop it first (kill ${running.pid}), or pass another --db PATH.`,
  );
}

/** The server's address as this machine reaches it: a wildcard bind (0.0.0.0, ::) is reached on loopback. */
function localUrl(address: string, family: string, port: number): string {
  if (address === '0.0.0.0') return `http://127.0.0.1:${port}`;
  if (address === '::') return `http://[::1]:${port}`;
  return family === 'IPv6' ? `http://[${address}]:${port}` : `http://${address}:${port}`;
}

/** Writes the discovery file; when the folder does not allow it, commands on the database cannot find the server. */
function announceServer(database: string, url: string, token: string): void {
  try {
    writeDiscoveryFile(database, { url, pid: process.pid, token, startedAt: new Date().toISOString() });
  } catch (error) {
    console.error(
      `warning: cannot write ${discoveryFilePath(database)} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): while this server runs, selfharness commands on this database cannot find it and fail on the database lock.`,
    );
  }
}

function wholeNumber(text: string, name: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) throw new UserError(`${name} ${text} must be a whole number.`);
  return value;
}
