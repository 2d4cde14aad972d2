import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  accessSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { SystemError, UserError } from '../core/index.js';
import type { CommandResult, ExecOptions, ShellSession, Workspace } from '../harness/index.js';
import { findEndMarker, OutputBuffer } from './output-buffer.js';
import { findByInnerPid, isAlive, killAll, listDescendants } from './process-tree.js';

/**
 * The one adapter over bubblewrap (`bwrap`). Every trial gets a scratch folder on the host holding its workspace, its
 * private /tmp and the verifier's logs; every command runs in a bwrap sandbox that sees only the system folders
 * (read-only), the workspace (writable, at /workspace) and that /tmp, in its own namespaces: no network (only `lo`),
 * private PIDs, IPC and host name. The verifier runs in a fresh sandbox that also sees the task's tests (read-only, at
 * /tests) and /logs (writable). The scratch folder is removed after the trial.
 */

/** Where the workspace appears inside the sandbox. */
export const WORKSPACE_PATH = '/workspace';

const INSTALL_HINT =
  'Install it with `apt-get install bubblewrap` (Debian, Ubuntu) or `dnf install bubblewrap` (Fedora)';

/** The sandbox itself failed (bwrap could not start a command): an infrastructure failure, never the agent's. */
export class SandboxError extends SystemError {}

/** Finds the `bwrap` executable on a PATH, or `undefined`. */
export function findBubblewrap(pathVariable = process.env.PATH ?? ''): string | undefined {
  for (const folder of pathVariable.split(delimiter)) {
    if (folder === '') continue;
    const candidate = join(folder, 'bwrap');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

export interface SandboxOptions {
  /** Run commands directly on this machine, without isolation. Only for trusted commands. */
  readonly unsafeNoSandbox?: boolean;
  /** The PATH searched for `bwrap` (default: this process's). */
  readonly pathVariable?: string;
}

/**
 * Chooses how trials run: in bubblewrap when it is installed, which is checked before anything starts; without it, a
 * clear error with the install command, unless running unsandboxed was asked for explicitly.
 */
export async function openSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  removeStaleTrialFolders();
  if (options.unsafeNoSandbox) return new Sandbox(undefined);
  const bwrapPath = findBubblewrap(options.pathVariable);
  if (!bwrapPath) {
    throw new UserError(
      `bubblewrap (bwrap) is not installed or not on PATH, and every trial runs in a bubblewrap sandbox. ${INSTALL_HINT}, or pass --unsafe-no-sandbox to run the commands directly on this machine (only for commands you trust).`,
    );
  }
  const sandbox = new Sandbox(bwrapPath);
  await sandbox.probe();
  return sandbox;
}

/** A mount inside the sandbox. */
type Mount =
  | { readonly kind: 'bind' | 'ro-bind'; readonly host: string; readonly inside: string }
  | { readonly kind: 'tmpfs'; readonly inside: string };

/** How to start one sandboxed process: its mounts and environment. */
interface LaunchPlan {
  readonly mounts: readonly Mount[];
  /** Environment for unsandboxed runs, where paths differ from the sandbox's. */
  readonly unsafeEnvironment: Record<string, string>;
  /** Working directory for unsandboxed runs. */
  readonly unsafeDirectory: string;
}

const SANDBOX_ENVIRONMENT: Record<string, string> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/tmp',
  LANG: 'C.UTF-8',
  TERM: 'dumb',
  SHELL: '/bin/bash',
};

/** System folders bound read-only (those that are links on this machine, as on merged-/usr systems, stay links). */
const SYSTEM_FOLDERS = ['/usr', '/etc', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];

export class Sandbox {
  /** `undefined`: commands run unsandboxed. */
  constructor(readonly bwrapPath: string | undefined) {}

  get isolated(): boolean {
    return this.bwrapPath !== undefined;
  }

  /** Starts `true` in a sandbox, so that a bwrap that cannot work here fails before any trial, with its reason. */
  async probe(): Promise<void> {
    const folder = mkdtempSync(join(tmpdir(), `selfharness-trial-${process.pid}-`));
    try {
      const result = await this.launch(
        'true',
        { mounts: [], unsafeEnvironment: {}, unsafeDirectory: folder },
        { timeoutMs: 10_000, maxOutputBytes: 4096 },
      ).done;
      if (result.exitCode !== 0) {
        throw new SandboxError(`bubblewrap cannot start a sandbox here (exit ${result.exitCode}): ${result.output}`);
      }
    } catch (error) {
      if (!(error instanceof SandboxError)) throw error;
      throw new SandboxError(
        `${error.message.trim()}. bubblewrap needs user namespaces: check \`sysctl kernel.unprivileged_userns_clone\` (must be 1) or run as root.`,
        { cause: error },
      );
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  }

  /** A fresh trial: an empty workspace, its own /tmp, and a logs folder for the verifier. */
  createTrial(): TrialSandbox {
    return new TrialSandbox(this, mkdtempSync(join(tmpdir(), `selfharness-trial-${process.pid}-`)));
  }

  /** The bwrap arguments for a plan, up to the command. */
  private bwrapArguments(plan: LaunchPlan): string[] {
    const args = ['--unshare-all', '--die-with-parent', '--new-session', '--hostname', 'sandbox', '--clearenv'];
    for (const [name, value] of Object.entries(SANDBOX_ENVIRONMENT)) args.push('--setenv', name, value);
    for (const folder of SYSTEM_FOLDERS) {
      if (!existsSync(folder)) continue;
      if (lstatSync(folder).isSymbolicLink()) args.push('--symlink', readlinkSync(folder), folder);
      else args.push('--ro-bind', folder, folder);
    }
    args.push('--proc', '/proc', '--dev', '/dev');
    const insides = new Set(plan.mounts.map((mount) => mount.inside));
    if (!insides.has('/tmp')) args.push('--tmpfs', '/tmp');
    for (const mount of plan.mounts) {
      if (mount.kind === 'tmpfs') args.push('--tmpfs', mount.inside);
      else args.push(`--${mount.kind}`, mount.host, mount.inside);
    }
    args.push('--chdir', insides.has(WORKSPACE_PATH) ? WORKSPACE_PATH : '/');
    return args;
  }

  /**
   * Starts one process: `bash` with the given arguments, inside a sandbox (or, unsafe, directly). Its standard error
   * is merged into standard output by the shell itself (`exec 2>&1`), so the two interleave as written; what bwrap
   * writes to standard error is its own failure.
   */
  spawnShell(plan: LaunchPlan, bashArguments: readonly string[], input: boolean): ChildProcess {
    const stdio: ['pipe' | 'ignore', 'pipe', 'pipe'] = [input ? 'pipe' : 'ignore', 'pipe', 'pipe'];
    if (!this.bwrapPath) {
      return spawn('bash', bashArguments, {
        cwd: plan.unsafeDirectory,
        env: { ...process.env, ...plan.unsafeEnvironment },
        detached: true,
        stdio,
      });
    }
    return spawn(this.bwrapPath, [...this.bwrapArguments(plan), '--', '/bin/bash', ...bashArguments], {
      detached: true,
      stdio,
      env: {},
    });
  }

  /** Runs one command in a fresh shell process, with a time limit (the whole process tree is killed) and an output limit. */
  launch(command: string, plan: LaunchPlan, options: ExecOptions): RunningCommand {
    const started = Date.now();
    const child = this.spawnShell(plan, ['--noprofile', '--norc', '-c', `exec 2>&1\n${command}`], false);
    const output = new OutputBuffer(options.maxOutputBytes);
    let sandboxError = '';
    let timedOut = false;
    child.stdout?.on('data', (chunk: Buffer) => output.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => {
      if (sandboxError.length < 4096) sandboxError += chunk.toString('utf8');
    });
    const stop = () => killTree(child);
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, options.timeoutMs);
    const done = new Promise<CommandResult>((resolve, reject) => {
      child.on('error', (error) => {
        clearTimeout(timer);
        reject(new SandboxError(`Could not start ${this.bwrapPath ?? 'bash'}: ${error.message}`, { cause: error }));
      });
      // A background process left behind by the command may hold the output open: once the shell exits, stop it.
      child.on('exit', () => stop());
      child.on('close', (code) => {
        clearTimeout(timer);
        const text = output.text();
        if (!timedOut && this.bwrapPath && sandboxError.startsWith('bwrap:')) {
          reject(new SandboxError(`The sandbox could not start: ${sandboxError.trim()}`));
          return;
        }
        resolve({
          output: text.output,
          exitCode: timedOut ? null : code,
          timedOut,
          outputTruncated: text.truncated,
          durationMs: Date.now() - started,
        });
      });
    });
    return { done, stop };
  }
}

interface RunningCommand {
  readonly done: Promise<CommandResult>;
  readonly stop: () => void;
}

/**
 * Kills a spawned process and its process group. In a sandbox that is enough: the sandbox's init dies with bwrap and
 * takes every process of its PID namespace along. Unsandboxed, the descendants are looked up and killed as well.
 */
function killTree(child: ChildProcess): void {
  if (child.pid === undefined) return;
  const descendants = child.spawnfile === 'bash' ? listDescendants(child.pid) : [];
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // The group is gone already.
  }
  killAll([child.pid, ...descendants]);
}

/**
 * One trial's sandbox: the agent's workspace, the setup and the verifier. Commands that the trial started are stopped
 * by `stop` (the agent's time ran out, the run was interrupted); `dispose` also removes the scratch folder.
 */
export class TrialSandbox {
  readonly workspace: SandboxWorkspace;
  private readonly workspaceFolder: string;
  private readonly temporaryFolder: string;
  private readonly logsFolder: string;

  constructor(
    private readonly sandbox: Sandbox,
    readonly scratchFolder: string,
  ) {
    this.workspaceFolder = join(scratchFolder, 'workspace');
    this.temporaryFolder = join(scratchFolder, 'tmp');
    this.logsFolder = join(scratchFolder, 'logs');
    for (const folder of [this.workspaceFolder, this.temporaryFolder, join(this.logsFolder, 'verifier')]) {
      mkdirSync(folder, { recursive: true });
    }
    this.workspace = new SandboxWorkspace(sandbox, this.workspaceFolder, this.temporaryFolder);
  }

  /** Runs the task's `environment/setup.sh` (seen at /environment) with the workspace as working directory. */
  async runSetup(environmentFolder: string, options: ExecOptions): Promise<CommandResult> {
    const inside = this.sandbox.isolated ? '/environment' : environmentFolder;
    return this.track(
      this.sandbox.launch(
        `bash ${quoteForBash(`${inside}/setup.sh`)}`,
        {
          mounts: [
            { kind: 'bind', host: this.workspaceFolder, inside: WORKSPACE_PATH },
            { kind: 'ro-bind', host: environmentFolder, inside: '/environment' },
          ],
          ...this.unsafePaths(),
        },
        options,
      ),
    );
  }

  /**
   * Runs the task's `tests/test.sh` in a fresh sandbox on the same workspace, with the tests read-only at /tests and
   * /logs writable; returns the command's result and the host folder where it wrote `verifier/reward.txt`.
   */
  async runVerifier(testsFolder: string, options: ExecOptions): Promise<{ result: CommandResult; logsFolder: string }> {
    const inside = this.sandbox.isolated ? '/tests' : testsFolder;
    const result = await this.track(
      this.sandbox.launch(
        `bash ${quoteForBash(`${inside}/test.sh`)}`,
        {
          mounts: [
            { kind: 'bind', host: this.workspaceFolder, inside: WORKSPACE_PATH },
            { kind: 'ro-bind', host: testsFolder, inside: '/tests' },
            { kind: 'bind', host: this.logsFolder, inside: '/logs' },
          ],
          ...this.unsafePaths(),
        },
        options,
      ),
    );
    return { result, logsFolder: this.logsFolder };
  }

  private unsafePaths(): Pick<LaunchPlan, 'unsafeEnvironment' | 'unsafeDirectory'> {
    return {
      unsafeEnvironment: {
        TMPDIR: this.temporaryFolder,
        HOME: this.temporaryFolder,
        SELFHARNESS_LOGS: this.logsFolder,
      },
      unsafeDirectory: this.workspaceFolder,
    };
  }

  private readonly running = new Set<RunningCommand>();

  private async track(command: RunningCommand): Promise<CommandResult> {
    this.running.add(command);
    try {
      return await command.done;
    } finally {
      this.running.delete(command);
    }
  }

  /** Kills every process of the trial; later agent commands are refused. */
  async stop(): Promise<void> {
    for (const command of this.running) command.stop();
    await this.workspace.stop();
  }

  /** Stops everything and removes the workspace, /tmp and logs of the trial. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.scratchFolder, { recursive: true, force: true });
  }
}

const STOPPED: CommandResult = {
  output: 'The trial was stopped: no more commands run.',
  exitCode: null,
  timedOut: true,
  outputTruncated: false,
  durationMs: 0,
};

/** The agent's view of a trial: its workspace and nothing else of the task (no solution, no tests). */
export class SandboxWorkspace implements Workspace {
  readonly agentPath: string;
  private readonly running = new Set<RunningCommand>();
  private readonly sessions = new Set<SandboxShellSession>();
  private stopped = false;

  constructor(
    private readonly sandbox: Sandbox,
    readonly hostPath: string,
    private readonly temporaryFolder: string,
  ) {
    this.agentPath = sandbox.isolated ? WORKSPACE_PATH : hostPath;
  }

  /** The agent's sandbox: the workspace and the trial's own /tmp, shared by all its commands. */
  private plan(): LaunchPlan {
    return {
      mounts: [
        { kind: 'bind', host: this.hostPath, inside: WORKSPACE_PATH },
        { kind: 'bind', host: this.temporaryFolder, inside: '/tmp' },
      ],
      unsafeEnvironment: { TMPDIR: this.temporaryFolder, HOME: this.temporaryFolder },
      unsafeDirectory: this.hostPath,
    };
  }

  async exec(command: string, options: ExecOptions): Promise<CommandResult> {
    if (this.stopped) return STOPPED;
    const running = this.sandbox.launch(command, this.plan(), options);
    this.running.add(running);
    try {
      return await running.done;
    } finally {
      this.running.delete(running);
    }
  }

  async openSession(): Promise<ShellSession> {
    if (this.stopped) throw new SandboxError('The trial was stopped: no new shell session can start.');
    const session = new SandboxShellSession(() =>
      this.sandbox.spawnShell(this.plan(), ['--noprofile', '--norc'], true),
    );
    this.sessions.add(session);
    session.onClose = () => this.sessions.delete(session);
    await session.start();
    return session;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const running of this.running) running.stop();
    await Promise.all([...this.sessions].map((session) => session.close()));
  }
}

/** Quotes text for bash as `$'…'`, byte by byte, so that any command (quotes, newlines, non-ASCII) arrives intact. */
export function quoteForBash(text: string): string {
  let quoted = "$'";
  for (const byte of Buffer.from(text, 'utf8')) {
    if (byte === 0x5c) quoted += '\\\\';
    else if (byte === 0x27) quoted += "\\'";
    else if (byte >= 0x20 && byte < 0x7f) quoted += String.fromCharCode(byte);
    else quoted += `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return `${quoted}'`;
}

const RESTARTED_NOTE =
  '[the command could not be interrupted, so the shell session was restarted: its variables and working directory are reset]';

/**
 * A persistent bash inside one sandbox process. Each command is sent as one `eval` of the quoted command text (so a
 * syntax error cannot swallow what follows), with standard input from /dev/null, followed by a line printing a unique
 * marker and the exit code. Output up to the marker is the command's. On a time limit, the processes the command
 * started are killed and the shell lives on; a command that cannot be interrupted that way (a loop in the shell
 * itself) ends the session, which restarts on the next command.
 */
export class SandboxShellSession implements ShellSession {
  private child: ChildProcess | undefined;
  private shellPid: number | undefined;
  private output: OutputBuffer | undefined;
  private waiting: (() => void) | undefined;
  private exited = false;
  private closed = false;
  private queue: Promise<unknown> = Promise.resolve();
  onClose: (() => void) | undefined;

  constructor(private readonly spawnShell: () => ChildProcess) {}

  async start(): Promise<void> {
    const child = this.spawnShell();
    this.child = child;
    this.exited = false;
    let sandboxError = '';
    // Events of a session that was replaced must not reach the new one.
    const current = () => this.child === child;
    child.stdout?.on('data', (chunk: Buffer) => {
      if (!current()) return;
      this.output?.push(chunk);
      this.waiting?.();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      if (sandboxError.length < 4096) sandboxError += chunk.toString('utf8');
    });
    const ended = () => {
      if (!current()) return;
      this.exited = true;
      this.waiting?.();
    };
    child.on('close', ended);
    child.on('error', ended);
    child.stdin?.on('error', () => {
      // The shell is gone; `exit` reports it.
    });
    const marker = `__SELFHARNESS_READY_${randomBytes(8).toString('hex')}__`;
    const ready = await this.send(`exec 2>&1; printf '\\n%s %d\\n' '${marker}' "$$"\n`, marker, 10_000);
    if (ready.exitCode === undefined) {
      killTree(child);
      throw new SandboxError(`The shell session could not start: ${(sandboxError || ready.output).trim()}`);
    }
    this.shellPid = child.pid === undefined ? undefined : findByInnerPid(child.pid, ready.exitCode);
  }

  /** Writes text to the shell and waits for the marker line, the shell's exit, or the time limit. */
  private send(
    text: string,
    marker: string,
    timeoutMs: number,
    limitBytes = 1 << 20,
  ): Promise<{ output: string; truncated: boolean; exitCode?: number; timedOut: boolean }> {
    const output = new OutputBuffer(limitBytes);
    this.output = output;
    return new Promise((resolve) => {
      let timedOut = false;
      let graceTimer: NodeJS.Timeout | undefined;
      let stopInterrupting = () => {};
      const finish = () => {
        const found = findEndMarker(output, marker);
        if (!found && !this.exited) return;
        clearTimeout(timer);
        clearTimeout(graceTimer);
        stopInterrupting();
        this.waiting = undefined;
        this.output = undefined;
        const text = output.text(found ? found.start : output.total);
        resolve({ output: text.output, truncated: text.truncated, exitCode: found?.exitCode, timedOut });
      };
      const timer = setTimeout(() => {
        timedOut = true;
        // Like an interrupt: kill what the command started, and for a moment whatever the rest of it starts; the shell
        // prints the marker when its command is over. If it is still busy after that (a loop in the shell itself), the
        // session is killed.
        const interrupt = () => {
          if (this.shellPid !== undefined) killAll(listDescendants(this.shellPid));
        };
        interrupt();
        const repeat = setInterval(interrupt, 100);
        graceTimer = setTimeout(() => {
          clearInterval(repeat);
          if (this.child) killTree(this.child);
        }, 1000);
        graceTimer.unref();
        stopInterrupting = () => clearInterval(repeat);
      }, timeoutMs);
      this.waiting = finish;
      this.child?.stdin?.write(text);
    });
  }

  run(command: string, options: ExecOptions): Promise<CommandResult> {
    const next = this.queue.then(() => this.runNow(command, options));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async runNow(command: string, options: ExecOptions): Promise<CommandResult> {
    if (this.closed) return STOPPED;
    const started = Date.now();
    let prefix = '';
    if (this.exited) {
      await this.start();
      prefix = '[a new shell session started: the previous one had ended]\n';
    }
    const marker = `__SELFHARNESS_DONE_${randomBytes(8).toString('hex')}__`;
    const line = `eval ${quoteForBash(command)} < /dev/null; printf '\\n%s %d\\n' '${marker}' "$?"\n`;
    const result = await this.send(line, marker, options.timeoutMs, options.maxOutputBytes);
    let note = '';
    if (result.exitCode === undefined) {
      note = result.timedOut
        ? RESTARTED_NOTE
        : `[the shell exited (exit ${this.child?.exitCode ?? 'unknown'}); the next command starts a new session]`;
      if (result.output !== '') note = `\n${note}`;
    }
    return {
      output: `${prefix}${result.output}${note}`,
      exitCode: result.timedOut ? null : (result.exitCode ?? this.child?.exitCode ?? null),
      timedOut: result.timedOut,
      outputTruncated: result.truncated,
      durationMs: Date.now() - started,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.child && !this.exited) killTree(this.child);
    this.onClose?.();
  }
}

/**
 * Removes trial folders left by earlier processes that were killed before they could clean up (their sandboxes died
 * with them). Folders of running processes are left alone.
 */
export function removeStaleTrialFolders(): void {
  const root = tmpdir();
  for (const name of readdirSync(root)) {
    const match = /^selfharness-trial-(\d+)-/.exec(name);
    if (!match || isAlive(Number(match[1]))) continue;
    rmSync(join(root, name), { recursive: true, force: true });
  }
}
