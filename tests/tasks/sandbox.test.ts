import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../core/index.js';
import { DEFAULT_SUITE_ROOT, findBubblewrap, openSandbox, type Sandbox, type TrialSandbox } from '../../tasks/index.js';
import { processWithArgument, waitUntil } from './temporary-suite.js';

const limits = { timeoutMs: 10_000, maxOutputBytes: 64 * 1024 };
const hasBubblewrap = findBubblewrap() !== undefined;

describe('without bubblewrap', () => {
  it('stops with the install command and the flag for running unsandboxed', async () => {
    const error = await openSandbox({ pathVariable: '/nonexistent' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toContain('apt-get install bubblewrap');
    expect((error as Error).message).toContain('--unsafe-no-sandbox');
  });
});

describe.skipIf(!hasBubblewrap)('the bubblewrap sandbox', () => {
  let sandbox: Sandbox;
  let trial: TrialSandbox;

  beforeAll(async () => {
    sandbox = await openSandbox();
    trial = sandbox.createTrial();
  });
  afterAll(async () => {
    await trial.dispose();
  });

  it('runs commands in /workspace, the workspace folder on the host, with stderr merged', async () => {
    const result = await trial.workspace.exec('pwd; echo out; echo err >&2; echo made > file.txt; exit 3', limits);
    expect(result.output).toBe('/workspace\nout\nerr\n');
    expect(result.exitCode).toBe(3);
    expect(readFileSync(join(trial.workspace.hostPath, 'file.txt'), 'utf8')).toBe('made\n');
  });

  it('has no network: connections fail, names do not resolve, only the loopback interface exists', async () => {
    const connect = await trial.workspace.exec(
      `python3 -c 'import socket; socket.create_connection(("1.1.1.1", 53), timeout=3); print("connected")'`,
      limits,
    );
    expect(connect.exitCode).not.toBe(0);
    expect(connect.output).not.toContain('connected');
    expect(connect.output).toMatch(/Network is unreachable|OSError/);
    const resolve = await trial.workspace.exec('getent hosts example.com', limits);
    expect(resolve.exitCode).not.toBe(0);
    const interfaces = await trial.workspace.exec("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '", limits);
    expect(interfaces.output.trim().split('\n')).toEqual(['lo']);
  });

  it('cannot write outside the workspace or read the task tests and solutions', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'selfharness-outside-'));
    const task = join(DEFAULT_SUITE_ROOT, 'suite', 'count-words');
    try {
      const write = await trial.workspace.exec(
        `echo x > ${outside}/escaped.txt; echo x > /usr/escaped.txt; echo x > /etc/escaped.txt; touch /workspace/inside.txt`,
        limits,
      );
      expect(write.output).toContain('Read-only file system');
      expect(existsSync(join(outside, 'escaped.txt'))).toBe(false);
      expect(existsSync('/usr/escaped.txt')).toBe(false);
      expect(existsSync(join(trial.workspace.hostPath, 'inside.txt'))).toBe(true);
      const read = await trial.workspace.exec(
        `cat ${task}/tests/test.sh; cat ${task}/solution/solve.sh; ls /tests /logs /work 2>&1; echo end`,
        limits,
      );
      expect(read.output).not.toContain('same_lines');
      expect(read.output).not.toContain('top-words');
      expect(read.output).toContain('No such file or directory');
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('kills a command and everything it started at its time limit', async () => {
    const started = Date.now();
    const result = await trial.workspace.exec('sleep 317 & sleep 318; echo never', { ...limits, timeoutMs: 500 });
    expect(result.timedOut).toBe(true);
    expect(result.exitCode).toBeNull();
    expect(result.output).not.toContain('never');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await waitUntil(() => !processWithArgument('sleep 317') && !processWithArgument('sleep 318'))).toBe(true);
  });

  it('cuts output at the limit and says so', async () => {
    const result = await trial.workspace.exec('yes abcdefgh | head -c 500000', { ...limits, maxOutputBytes: 1000 });
    expect(result.outputTruncated).toBe(true);
    expect(result.output.length).toBe(1000);
    expect(result.exitCode).toBe(0);
    const small = await trial.workspace.exec('echo small', limits);
    expect(small.outputTruncated).toBe(false);
  });

  it('keeps variables, the working directory and functions in a persistent session', async () => {
    const session = await trial.workspace.openSession();
    try {
      await session.run(
        'export GREETING=hello; mkdir -p sub/dir && cd sub/dir; shout() { echo "$1" | tr a-z A-Z; }',
        limits,
      );
      const result = await session.run('echo "$GREETING from $(pwd)"; shout quiet', limits);
      expect(result.output).toBe('hello from /workspace/sub/dir\nQUIET\n');
      expect(result.exitCode).toBe(0);
      const failed = await session.run('false', limits);
      expect(failed.exitCode).toBe(1);
      const broken = await session.run('echo "unterminated', limits);
      expect(broken.exitCode).toBe(2);
      const heredoc = await session.run("cat <<'EOF'\nline $GREETING\nEOF", limits);
      expect(heredoc.output).toBe('line $GREETING\n');
      // A fresh process knows nothing of the session.
      const fresh = await trial.workspace.exec('echo "[$GREETING] $(pwd)"', limits);
      expect(fresh.output).toBe('[] /workspace\n');
    } finally {
      await session.close();
    }
  });

  it('interrupts a timed-out session command and keeps the session', async () => {
    const session = await trial.workspace.openSession();
    try {
      await session.run('export KEPT=yes; cd /tmp', limits);
      const slow = await session.run('sleep 319', { ...limits, timeoutMs: 500 });
      expect(slow.timedOut).toBe(true);
      expect(slow.exitCode).toBeNull();
      expect(processWithArgument('sleep 319')).toBe(false);
      const after = await session.run('echo "$KEPT $(pwd)"', limits);
      expect(after.output).toBe('yes /tmp\n');
      // A loop in the shell itself cannot be interrupted: the session restarts and says its state is gone.
      const loop = await session.run('while true; do :; done', { ...limits, timeoutMs: 300 });
      expect(loop.timedOut).toBe(true);
      expect(loop.output).toContain('restarted');
      const restarted = await session.run('echo "[$KEPT] $(pwd)"', limits);
      expect(restarted.output).toContain('[] /workspace');
    } finally {
      await session.close();
    }
  });

  it("cannot read the host's environment secrets, from its own environment or from the host's processes", async () => {
    const secret = `sk-host-secret-${process.pid}`;
    const saved = { openai: process.env.OPENAI_API_KEY, llm: process.env.SELFHARNESS_LLM_API_KEY };
    process.env.OPENAI_API_KEY = secret;
    process.env.SELFHARNESS_LLM_API_KEY = secret;
    try {
      const result = await trial.workspace.exec(
        [
          'env',
          'cat /proc/*/environ 2>/dev/null | tr "\\0" "\\n"',
          `cat /proc/${process.pid}/environ 2>&1`,
          'grep -rs sk-host-secret /root /home 2>/dev/null',
          'echo "processes: $(ls /proc | grep -c "^[0-9]")"',
        ].join('\n'),
        limits,
      );
      expect(result.output).not.toContain(secret);
      expect(result.output).not.toContain('API_KEY');
      // Its own PID namespace: the host's processes, this one included, are not there to read.
      expect(result.output).toContain(`/proc/${process.pid}/environ: No such file or directory`);
      expect(Number(/processes: (\d+)/.exec(result.output)?.[1])).toBeLessThan(10);
    } finally {
      if (saved.openai === undefined) delete process.env.OPENAI_API_KEY;
      else process.env.OPENAI_API_KEY = saved.openai;
      if (saved.llm === undefined) delete process.env.SELFHARNESS_LLM_API_KEY;
      else process.env.SELFHARNESS_LLM_API_KEY = saved.llm;
    }
  });

  it('leaves no process behind a finished command, even one that detached itself', async () => {
    const result = await trial.workspace.exec('setsid nohup sleep 323 > /dev/null 2>&1 & disown; echo started', limits);
    expect(result.output).toBe('started\n');
    expect(result.exitCode).toBe(0);
    expect(await waitUntil(() => !processWithArgument('sleep 323'))).toBe(true);
  });

  it('removes the workspace after the trial and stops its commands', async () => {
    const other = sandbox.createTrial();
    writeFileSync(join(other.workspace.hostPath, 'data.txt'), 'x');
    const running = other.workspace.exec('sleep 321', limits);
    await waitUntil(() => processWithArgument('sleep 321'));
    await other.dispose();
    const result = await running;
    expect(result.exitCode).toBeNull();
    expect(existsSync(other.scratchFolder)).toBe(false);
    expect(await waitUntil(() => !processWithArgument('sleep 321'))).toBe(true);
  });
});

describe('unsandboxed, when asked for', () => {
  it('runs in the workspace folder on the host, sessions included', async () => {
    const sandbox = await openSandbox({ unsafeNoSandbox: true });
    expect(sandbox.isolated).toBe(false);
    const trial = sandbox.createTrial();
    try {
      const result = await trial.workspace.exec('pwd', limits);
      expect(result.output.trim()).toBe(trial.workspace.hostPath);
      const session = await trial.workspace.openSession();
      await session.run('cd ..; export X=1', limits);
      expect((await session.run('echo "$X $(pwd)"', limits)).output.trim()).toBe(`1 ${trial.scratchFolder}`);
      await session.close();
    } finally {
      await trial.dispose();
    }
    expect(existsSync(trial.scratchFolder)).toBe(false);
  });
});
