import { AsyncLocalStorage } from 'node:async_hooks';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { resolve } from 'node:path';

/**
 * DuckDB lets one process write a database file. While `selfharness serve` owns a database, the command line runs its
 * commands inside that server instead of opening the file (which would fail on DuckDB's lock): the server leaves a
 * discovery file beside the database, and the command line sends its arguments and working folder to `POST /v1/cli`,
 * which runs them with the server's DuckDB instance and streams the output back. This module holds both ends: the
 * discovery file, the client that forwards a command, and the runner that executes one inside the server.
 */

/** What a running server writes beside its database, so that the command line can find it. */
export interface ServerDiscovery {
  /** Where the server answers, on a loopback address. */
  url: string;
  pid: number;
  /** A random token made when the server started; `POST /v1/cli` accepts it (and only on loopback). */
  token: string;
  startedAt: string;
}

/** The discovery file of a database: `<database>.server.json`, beside it. */
export function discoveryFilePath(database: string): string {
  return `${resolve(database)}.server.json`;
}

/**
 * Writes the discovery file, readable by this user alone (it holds the token): first to a temporary file, then
 * renamed, so a reader never sees half of it.
 */
export function writeDiscoveryFile(database: string, discovery: ServerDiscovery): void {
  const file = discoveryFilePath(database);
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(discovery, null, 2)}\n`, { mode: 0o600 });
  renameSync(temporary, file);
}

/** The discovery file's content, or `undefined` when there is none or it is not one (a damaged file is removed). */
export function readDiscoveryFile(database: string): ServerDiscovery | undefined {
  const file = discoveryFilePath(database);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const value = JSON.parse(text) as Partial<ServerDiscovery>;
    if (
      typeof value.url === 'string' &&
      typeof value.token === 'string' &&
      typeof value.pid === 'number' &&
      Number.isInteger(value.pid) &&
      value.pid > 0
    ) {
      return { url: value.url, pid: value.pid, token: value.token, startedAt: String(value.startedAt ?? '') };
    }
  } catch {
    // Not JSON: left behind by a server killed while writing it.
  }
  rmSync(file, { force: true });
  return undefined;
}

/** Removes the discovery file if it is the one written by process `pid` (a newer server's file is left alone). */
export function removeDiscoveryFile(database: string, pid: number): void {
  const discovery = readDiscoveryFile(database);
  if (discovery?.pid === pid) rmSync(discoveryFilePath(database), { force: true });
}

/** Whether a process with this id exists (one of another user still counts: it may hold the database). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The server that owns the database now, if any. A discovery file whose process is gone is stale (the server was
 * killed): it is removed, and the database is used directly.
 */
export function findServer(database: string): ServerDiscovery | undefined {
  const discovery = readDiscoveryFile(database);
  if (discovery === undefined) return undefined;
  if (isProcessAlive(discovery.pid)) return discovery;
  debug(`removing the stale ${discoveryFilePath(database)}: server process ${discovery.pid} is gone`);
  rmSync(discoveryFilePath(database), { force: true });
  return undefined;
}

/** Whether something accepts connections at the server's address: a live process that does not is not the server. */
export function isServerAnswering(discovery: ServerDiscovery, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const probe = request(
      `${discovery.url}/v1/openapi.json`,
      { method: 'GET', timeout: timeoutMs, agent: false },
      (response) => {
        response.resume();
        resolvePromise(true);
      },
    );
    probe.on('timeout', () => probe.destroy(new Error('timeout')));
    probe.on('error', () => resolvePromise(false));
    probe.end();
  });
}

/** Commands that never go through a server: `serve` itself, and help. */
const LOCAL_COMMANDS = new Set(['serve', 'help']);

/** The database a command works on, resolved as the command itself would: `--db`, `SELFHARNESS_DB`, the default. */
export function commandDatabase(argv: readonly string[], command: string): string {
  let given: string | undefined;
  const args = argv.slice(2);
  for (let index = 0; index < args.length; index++) {
    const arg = args[index] as string;
    if (arg === '--') break;
    if (arg === '--db') given = args[++index];
    else if (arg.startsWith('--db=')) given = arg.slice('--db='.length);
  }
  const fallback = command === 'demo' ? 'selfharness-demo.duckdb' : 'selfharness.duckdb';
  return resolve(given ?? process.env.SELFHARNESS_DB ?? fallback);
}

/**
 * Runs the command in the server that owns its database, when one runs: sends the arguments (with the database as an
 * absolute `--db`, so that the server's own `SELFHARNESS_DB` plays no part) and this process's working folder, relays
 * the output as it comes, and returns the command's exit code. Returns `undefined` when no server owns the database
 * (or its discovery file is stale), so the command runs here on the file. Prints nothing of its own on stdout, so
 * `--json` output stays parseable.
 */
export async function forwardToServer(
  argv: readonly string[],
  command: string | undefined,
): Promise<number | undefined> {
  if (command === undefined || LOCAL_COMMANDS.has(command)) return undefined;
  const args = argv.slice(2);
  const end = args.indexOf('--');
  const options = end === -1 ? args : args.slice(0, end);
  if (options.some((arg) => arg === '--help' || arg === '-h')) return undefined;
  const database = commandDatabase(argv, command);
  const discovery = findServer(database);
  if (discovery === undefined) return undefined;
  const forwarded = [...argv.slice(0, 2), '--db', database, ...args];
  debug(`running \`${command}\` through the server at ${discovery.url} (pid ${discovery.pid}), which owns ${database}`);
  const outcome = await sendCommand(discovery, { argv: forwarded, cwd: process.cwd() });
  if (outcome.kind === 'exit') return outcome.code;
  if (outcome.kind === 'unreachable') {
    debug(
      `the server at ${discovery.url} does not answer (${outcome.reason}): removing ${discoveryFilePath(database)}`,
    );
    removeDiscoveryFile(database, discovery.pid);
    return undefined;
  }
  process.stderr.write(`error: ${outcome.message}\n`);
  return outcome.code;
}

/** The body of `POST /v1/cli`. */
export interface ForwardedCommand {
  /** The whole command line as `process.argv` has it (the first two entries are ignored). */
  argv: string[];
  /** The client's working folder: relative paths in `argv` resolve against it. */
  cwd: string;
}

/** One line of the `POST /v1/cli` answer: output as it was written, then the exit code. */
export type CommandStreamLine = { stream: 'stdout' | 'stderr'; text: string } | { exit: number };

type SendOutcome =
  | { kind: 'exit'; code: number }
  | { kind: 'unreachable'; reason: string }
  | { kind: 'failed'; code: number; message: string };

/** Sends a command to the server and relays its output; says how it ended. */
function sendCommand(discovery: ServerDiscovery, command: ForwardedCommand): Promise<SendOutcome> {
  const body = JSON.stringify(command);
  const where = `the selfharness server at ${discovery.url} (pid ${discovery.pid})`;
  return new Promise((resolvePromise) => {
    const call = request(
      `${discovery.url}/v1/cli`,
      {
        method: 'POST',
        // One request, then the connection closes: a kept-alive socket would hold this process open.
        agent: false,
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
          Authorization: `Bearer ${discovery.token}`,
        },
      },
      (response) => {
        response.setEncoding('utf8');
        if (response.statusCode !== 200) {
          let text = '';
          response.on('data', (chunk: string) => (text += chunk));
          response.on('end', () =>
            resolvePromise({
              kind: 'failed',
              code: 1,
              message: `${where} refused the command (HTTP ${response.statusCode}): ${problemDetail(text)}`,
            }),
          );
          return;
        }
        let pending = '';
        let exit: number | undefined;
        let malformed = false;
        const relay = (line: string) => {
          if (line.trim() === '' || malformed) return;
          let parsed: CommandStreamLine;
          try {
            parsed = JSON.parse(line) as CommandStreamLine;
          } catch {
            malformed = true;
            response.destroy();
            resolvePromise({
              kind: 'failed',
              code: 1,
              message: `${where} answered something other than the output of a command (${line.slice(0, 80)}). Is another program listening there? Stop the server and run the command again.`,
            });
            return;
          }
          if ('exit' in parsed) exit = parsed.exit;
          else (parsed.stream === 'stderr' ? process.stderr : process.stdout).write(parsed.text);
        };
        const stopped = (reason: string) =>
          resolvePromise({
            kind: 'failed',
            code: 1,
            message: `${where} stopped before the command finished (${reason}); part of its work may be done. Run the command again: with no server running it uses the database file directly.`,
          });
        response.on('data', (chunk: string) => {
          pending += chunk;
          let newline = pending.indexOf('\n');
          while (newline !== -1) {
            relay(pending.slice(0, newline));
            pending = pending.slice(newline + 1);
            newline = pending.indexOf('\n');
          }
        });
        response.on('end', () => {
          relay(pending);
          if (exit === undefined) stopped('the answer ended without an exit code');
          else resolvePromise({ kind: 'exit', code: exit });
        });
        response.on('aborted', () => stopped('the connection was cut'));
        response.on('error', (error) => stopped(error.message));
      },
    );
    call.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED' || error.code === 'ENOTFOUND' || error.code === 'EADDRNOTAVAIL') {
        resolvePromise({ kind: 'unreachable', reason: error.code });
      } else {
        resolvePromise({
          kind: 'failed',
          code: 1,
          message: `${where} could not be reached: ${error.message}. If it is stuck, stop it (kill ${discovery.pid}) and run the command again.`,
        });
      }
    });
    call.end(body);
  });
}

/** The `detail` of a problem document, or the text itself. */
function problemDetail(text: string): string {
  try {
    const problem = JSON.parse(text) as { detail?: unknown };
    if (typeof problem.detail === 'string') return problem.detail;
  } catch {
    // Not a problem document.
  }
  return text.trim().split('\n')[0] ?? '';
}

function debug(line: string): void {
  if (process.env.SELFHARNESS_DEBUG) process.stderr.write(`selfharness: ${line}\n`);
}

/** The command running inside this server, for the code it calls (output capture, refusals). */
interface ServerCommandContext {
  write(stream: 'stdout' | 'stderr', text: string): void;
}

const serverCommand = new AsyncLocalStorage<ServerCommandContext>();

/**
 * Whether this code runs as a command forwarded to a server. Such a command shares the server's DuckDB instance, which
 * may touch no file outside the server's staging folder, so commands that make DuckDB write elsewhere (`export`)
 * refuse early with a message that says what to do.
 */
export function isRunningInServer(): boolean {
  return serverCommand.getStore() !== undefined;
}

let captureInstalled = false;

/**
 * Wraps `process.stdout.write` and `process.stderr.write` once, so that what a forwarded command writes (directly, with
 * `console.log`/`console.error`, or through progress lines) goes to that command's client. Writes from anything else
 * in the server (its own log lines, other requests) still reach the server's own terminal.
 */
function installOutputCapture(): void {
  if (captureInstalled) return;
  captureInstalled = true;
  for (const name of ['stdout', 'stderr'] as const) {
    const stream = process[name];
    const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    stream.write = ((chunk: unknown, encoding?: unknown, callback?: unknown): boolean => {
      const context = serverCommand.getStore();
      if (context === undefined) return write(chunk, encoding, callback);
      const text =
        typeof chunk === 'string'
          ? chunk
          : Buffer.from(chunk as Uint8Array).toString(
              typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8',
            );
      context.write(name, text);
      const done = typeof encoding === 'function' ? encoding : callback;
      if (typeof done === 'function') process.nextTick(done as () => void);
      return true;
    }) as typeof stream.write;
    // The client reads the output through a pipe: progress comes as plain lines, not rewritten in place.
    const interactive = stream.isTTY;
    Object.defineProperty(stream, 'isTTY', {
      configurable: true,
      get: () => (serverCommand.getStore() === undefined ? interactive : false),
    });
  }
}

/** The forwarded commands, run one after another in the order they came; a failed one does not stop the next. */
let commandQueue: Promise<unknown> = Promise.resolve();

/** The command line's entry point, given by the caller (the API route) so that this module does not import it. */
export type CommandLineMain = (argv: readonly string[]) => Promise<number>;

/**
 * Runs a forwarded command inside the server, after the forwarded commands before it (one at a time: it changes the
 * process's working folder for its duration). `write` gets its output as it is produced. When `signal` aborts (the
 * client went away) before the command starts, it does not run; while it runs, the interrupt handlers the command
 * installed itself (SIGINT/SIGTERM, as `run` and `improve` do) are called, as Ctrl-C would in a terminal.
 */
export function runForwardedCommand(
  main: CommandLineMain,
  command: ForwardedCommand,
  write: ServerCommandContext['write'],
  signal: AbortSignal,
): Promise<number> {
  const task = async (): Promise<number> => {
    if (signal.aborted) return 130;
    installOutputCapture();
    const previousFolder = process.cwd();
    const signalsBefore = new Set([...process.listeners('SIGINT'), ...process.listeners('SIGTERM')]);
    const interrupt = () => {
      // One call per handler, as one Ctrl-C: a handler installed for both signals exits at once on a second call.
      const added = new Set([...process.listeners('SIGINT'), ...process.listeners('SIGTERM')]);
      for (const listener of added) {
        if (!signalsBefore.has(listener)) (listener as NodeJS.SignalsListener)('SIGINT');
      }
    };
    signal.addEventListener('abort', interrupt, { once: true });
    try {
      process.chdir(command.cwd);
      return await serverCommand.run({ write }, () => main(command.argv));
    } finally {
      signal.removeEventListener('abort', interrupt);
      process.chdir(previousFolder);
    }
  };
  const result = commandQueue.then(task);
  commandQueue = result.catch(() => undefined);
  return result;
}
