import { serve } from '@hono/node-server';
import type { Command } from 'commander';
import { installAnalytics } from '../../analytics/index.js';
import { createApp, DEFAULT_BODY_LIMIT_BYTES, restrictServerFileAccess } from '../../api/index.js';
import { EventLog, UserError } from '../../core/index.js';
import { databasePath, type GlobalOptions } from '../context.js';

interface ServeOptions {
  port: string;
  host: string;
  token?: string;
  bodyLimit: string;
  sqlTimeout: string;
}

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
      const log = await EventLog.open(databasePath(globals()));
      try {
        await installAnalytics(log.database);
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
      await new Promise<void>((resolvePromise, reject) => {
        const server = serve({ fetch: app.fetch, port, hostname: options.host }, (info) => {
          const host = info.family === 'IPv6' ? `[${info.address}]` : info.address;
          console.log(`selfharness API on http://${host}:${info.port} (database ${log.database.path})`);
          console.error('Press Ctrl-C to stop.');
        });
        server.on('error', (error) => {
          log.close();
          reject(new UserError(`Cannot listen on ${options.host}:${port}: ${error.message}`, { cause: error }));
        });
        const stop = () => {
          server.close(() => {
            log.close();
            resolvePromise();
          });
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}

function wholeNumber(text: string, name: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) throw new UserError(`${name} ${text} must be a whole number.`);
  return value;
}
