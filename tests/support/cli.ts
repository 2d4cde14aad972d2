import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';

export const binPath = resolve(import.meta.dirname, '../../cli/bin.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `selfharness` as a user would, in its own process (from the folder `cwd`, when given). */
export function runCli(
  args: readonly string[],
  env: Record<string, string> = {},
  options: { cwd?: string } = {},
): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [binPath, ...args], {
      env: { ...process.env, ...env },
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

/** Starts `selfharness` and returns the process, for tests that interrupt it. */
export function startCli(args: readonly string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [binPath, ...args], { env: { ...process.env, ...env } });
}

/** A running `selfharness serve`: its process, its address, and when it exits. */
export interface ServeProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly exited: Promise<number | null>;
}

/** Starts `selfharness --db DATABASE serve --port 0 …` and waits until it prints its address. */
export async function startServe(
  database: string,
  extra: readonly string[] = [],
  env: Record<string, string> = {},
): Promise<ServeProcess> {
  const child = startCli(['--db', database, 'serve', '--port', '0', ...extra], env);
  let stderr = '';
  child.stderr?.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolvePromise) => child.on('close', resolvePromise));
  const url = await new Promise<string>((resolvePromise, reject) => {
    let stdout = '';
    child.stdout?.on('data', (chunk) => {
      stdout += chunk;
      const match = stdout.match(/API on (http:\/\/127\.0\.0\.1:\d+)/);
      if (match?.[1]) resolvePromise(match[1]);
    });
    child.on('close', () => reject(new Error(`serve exited early: ${stderr}`)));
  });
  return { child, url, exited };
}
