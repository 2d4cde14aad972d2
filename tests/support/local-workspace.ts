import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { CommandResult, ExecOptions, ShellSession, Workspace } from '../../harness/index.js';

/**
 * A workspace for tests without a sandbox: a temporary folder on this machine, commands run by bash in it. It is a
 * small real implementation of `Workspace` (the task runner's bubblewrap sandbox is the one for agents' commands);
 * here the folder is the same inside and out, so `agentPath` equals `hostPath`.
 */
export function createLocalWorkspace(files: Record<string, string> = {}): Workspace {
  const hostPath = mkdtempSync(join(tmpdir(), 'selfharness-workspace-'));
  for (const [path, content] of Object.entries(files)) {
    const full = join(hostPath, path);
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, content);
  }
  return {
    hostPath,
    agentPath: hostPath,
    exec: (command, options) => execCommand(hostPath, command, options),
    openSession: async () => openLocalSession(hostPath),
  };
}

function execCommand(cwd: string, command: string, options: ExecOptions): Promise<CommandResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', 'exec 2>&1; eval "$SELFHARNESS_COMMAND"'], {
      cwd,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: cwd, SELFHARNESS_COMMAND: command },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let truncated = false;
    let timedOut = false;
    const collect = (chunk: Buffer) => {
      if (output.length >= options.maxOutputBytes) {
        truncated = true;
        return;
      }
      output += chunk.toString('utf8');
      if (output.length > options.maxOutputBytes) {
        output = output.slice(0, options.maxOutputBytes);
        truncated = true;
      }
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    }, options.timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({
        output,
        exitCode: timedOut ? null : code,
        timedOut,
        outputTruncated: truncated,
        durationMs: Date.now() - started,
      });
    });
  });
}

/** A persistent bash: each command is sourced from a file, so `cd`, `export` and functions carry over. */
function openLocalSession(cwd: string): ShellSession {
  let shell: ChildProcessWithoutNullStreams | undefined;
  let buffer = '';
  let waiting: ((text: string) => void) | undefined;
  const start = () => {
    const child = spawn('bash', ['--norc', '--noprofile'], {
      cwd,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: cwd },
      detached: true,
    });
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      waiting?.(buffer);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      waiting?.(buffer);
    });
    child.stdin.write('exec 2>&1\n');
    shell = child;
    return child;
  };
  const kill = () => {
    if (shell?.pid) {
      try {
        process.kill(-shell.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    shell = undefined;
  };
  return {
    run(command, options) {
      const child = shell ?? start();
      const started = Date.now();
      const marker = `__selfharness_done_${randomUUID()}__`;
      const file = join(tmpdir(), `${marker}.sh`);
      writeFileSync(file, command);
      buffer = '';
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiting = undefined;
          kill();
          resolve({
            output: buffer,
            exitCode: null,
            timedOut: true,
            outputTruncated: false,
            durationMs: Date.now() - started,
          });
        }, options.timeoutMs);
        waiting = (text) => {
          const match = new RegExp(`\\n?${marker} (\\d+)\\n`).exec(text);
          if (!match) return;
          clearTimeout(timer);
          waiting = undefined;
          let output = text.slice(0, match.index);
          const truncated = output.length > options.maxOutputBytes;
          if (truncated) output = output.slice(0, options.maxOutputBytes);
          resolve({
            output,
            exitCode: Number(match[1]),
            timedOut: false,
            outputTruncated: truncated,
            durationMs: Date.now() - started,
          });
        };
        child.stdin.write(`. '${file}' </dev/null\nprintf '\\n${marker} %s\\n' "$?"\n`);
      });
    },
    async close() {
      kill();
    },
  };
}
