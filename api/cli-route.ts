import { timingSafeEqual } from 'node:crypto';
import { statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context } from 'hono';
import { type CommandStreamLine, type ForwardedCommand, runForwardedCommand } from '../cli/remote.js';
import type { EventLog } from '../core/index.js';
import { HttpProblem } from './problem.js';
import type { RouteRegistrar } from './routes.js';

/** The largest `POST /v1/cli` body: a command line and a folder. */
const CLI_BODY_LIMIT_BYTES = 1024 * 1024;

/** The local token of each log whose server runs CLI commands (set by `selfharness serve`). */
const localTokens = new WeakMap<EventLog, string>();

/**
 * Lets the app over `log` run the command line's commands sent with `token` (`POST /v1/cli`). Only `selfharness serve`
 * calls it, with a token it made at start and wrote to the discovery file beside the database; an app without it
 * answers 404 there.
 */
export function acceptCliCommands(log: EventLog, token: string): void {
  localTokens.set(log, token);
}

/**
 * `POST /v1/cli`: a command of the local CLI, run inside the server that owns the database. The body is
 * `{argv, cwd}`; the answer is NDJSON: `{stream: 'stdout' | 'stderr', text}` lines as the command writes, then
 * `{exit: code}`. It needs the server's local token (not the API token: the CLI finds it in the discovery file) and a
 * loopback client: it runs commands as the server's user.
 */
export const registerCliRoute: RouteRegistrar = (app, { log }) => {
  app.post('/v1/cli', async (context) => {
    const token = localTokens.get(log);
    if (token === undefined) {
      throw new HttpProblem(
        404,
        'Not Found',
        'This server runs no CLI commands: only one started with `selfharness serve` does, for the selfharness command line on the same machine.',
      );
    }
    if (!isLoopback(remoteAddress(context))) {
      return forbidden(
        context,
        'CLI commands are accepted from this machine only (a loopback address): they run with the server user’s rights.',
      );
    }
    const given = Buffer.from(context.req.header('authorization') ?? '');
    const expected = Buffer.from(`Bearer ${token}`);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new HttpProblem(
        401,
        'Unauthorized',
        "POST /v1/cli needs the server's local token (`Authorization: Bearer <token>`) from the discovery file `<database>.server.json`; the selfharness command line sends it by itself.",
      );
    }
    const command = parseCommand(await readBody(context));
    const { main } = await import('../cli/main.js');
    const encoder = new TextEncoder();
    const abort = new AbortController();
    context.req.raw.signal.addEventListener('abort', () => abort.abort(), { once: true });
    let open = true;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        const send = (line: CommandStreamLine) => {
          if (!open) return;
          try {
            controller.enqueue(encoder.encode(`${JSON.stringify(line)}\n`));
          } catch {
            open = false;
          }
        };
        runForwardedCommand(main, command, (stream, text) => send({ stream, text }), abort.signal)
          .catch((error: unknown) => {
            const message = error instanceof Error ? error.message : String(error);
            send({ stream: 'stderr', text: `error: ${message.split('\n')[0]}\n` });
            return 1;
          })
          .then((code) => {
            send({ exit: code });
            if (open) controller.close();
            open = false;
          });
      },
      cancel() {
        open = false;
        abort.abort();
      },
    });
    return new Response(body, {
      status: 200,
      headers: { 'Content-Type': 'application/x-ndjson; charset=utf-8', 'Cache-Control': 'no-store' },
    });
  });
};

/** The client's address, or `undefined` when the app was not called through a Node server. */
function remoteAddress(context: Context): string | undefined {
  try {
    return getConnInfo(context).remote.address;
  } catch {
    return undefined;
  }
}

function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address);
}

/** A 403 problem document (the shared `HttpProblem` statuses have no 403). */
function forbidden(context: Context, detail: string): Response {
  return context.body(JSON.stringify({ type: 'about:blank', title: 'Forbidden', status: 403, detail }), 403, {
    'Content-Type': 'application/problem+json',
  });
}

async function readBody(context: Context): Promise<unknown> {
  const text = await context.req.text();
  if (Buffer.byteLength(text) > CLI_BODY_LIMIT_BYTES) {
    throw new HttpProblem(413, 'Content Too Large', `A CLI command is at most ${CLI_BODY_LIMIT_BYTES} bytes.`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpProblem(400, 'Bad Request', `The body is not JSON: ${(error as Error).message}`);
  }
}

/** The forwarded command: every argument a string, and the client's working folder, which must exist here. */
function parseCommand(body: unknown): ForwardedCommand {
  const fields = (body ?? {}) as { argv?: unknown; cwd?: unknown };
  const { argv, cwd } = fields;
  if (!Array.isArray(argv) || argv.length < 2 || !argv.every((arg) => typeof arg === 'string')) {
    throw new HttpProblem(
      400,
      'Bad Request',
      'Send `{"argv": [...], "cwd": "/folder"}`: argv as process.argv has it (the node binary and script first), every entry a string.',
    );
  }
  if (typeof cwd !== 'string' || !isAbsolute(cwd) || !isFolder(cwd)) {
    throw new HttpProblem(
      400,
      'Bad Request',
      `cwd ${JSON.stringify(cwd)} must be the absolute path of an existing folder on the server's machine.`,
    );
  }
  return { argv: argv as string[], cwd };
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
