import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultHarnessSpec, type MiddlewareEntry, type Rule } from '../../harness/index.js';
import { instructionPaths } from '../../harness/middleware/artifact-check.js';
import { normalizeOutput } from '../../harness/middleware/output-normalizer.js';
import { commandPrograms } from '../../harness/middleware/shell-words.js';
import { call, finish, ScriptedModel, shell } from '../support/scripted-model.js';
import { runTrial, specWith, taskFor, toolResults } from './trial.js';

const withMiddleware = (...middleware: unknown[]) => specWith({ middleware });
const withRules = (rules: unknown[]) => specWith({ rules });
const outputs = (run: Awaited<ReturnType<typeof runTrial>>) => toolResults(run.events).map((result) => result.output);

describe('built-in middleware', () => {
  it('persistent-shell keeps variables, the working directory and functions across shell calls', async () => {
    const model = new ScriptedModel([
      shell('export X=1; cd sub; greet() { echo "hi $1"; }'),
      shell('echo "X=$X"; basename "$PWD"; greet there'),
      finish(),
    ]);
    const run = await runTrial({
      model,
      spec: withMiddleware({ name: 'persistent-shell' } satisfies MiddlewareEntry),
      files: { 'sub/f.txt': '' },
    });
    expect(outputs(run)[1]).toBe('X=1\nsub\nhi there\n[exit code 0]');
  });

  it('loop-breaker blocks the same call with the same arguments from the n-th time, without running it', async () => {
    const model = new ScriptedModel([
      shell('echo x >> count.txt'),
      shell('echo x >> count.txt'),
      shell('echo x >> count.txt'),
      finish(),
    ]);
    const run = await runTrial({ model, spec: withMiddleware({ name: 'loop-breaker', maxRepeats: 3 }) });
    expect(readFileSync(join(run.workspace.hostPath, 'count.txt'), 'utf8')).toBe('x\nx\n');
    const third = toolResults(run.events)[2];
    expect(third?.error).toBe('blocked by loop-breaker');
    expect(third?.output).toMatch(/Blocked by the harness: You have made this exact shell call 3 times/);
    expect(model.requests[3]?.messages.at(-1)?.content).toMatch(/Blocked by the harness/);
  });

  it('failed-command-guard blocks a command that already failed the given number of times, quoting the failure', async () => {
    const model = new ScriptedModel([
      shell('ls nothing-here'),
      shell('ls  nothing-here'),
      shell('ls nothing-here'),
      finish(),
    ]);
    const run = await runTrial({ model, spec: withMiddleware({ name: 'failed-command-guard', maxFailures: 2 }) });
    const results = toolResults(run.events);
    expect(results[1]?.exitCode).toBe(2);
    expect(results[2]?.exitCode).toBeUndefined();
    expect(results[2]?.output).toMatch(/already failed 2 times \(last time exit code 2: .*nothing-here/);
  });

  it('artifact-check refuses finish while required files are missing, naming them, then accepts', async () => {
    const task = taskFor('Count the rows and write the count to `out/summary.csv`. Read `data/in.txt`.', {
      requiredArtifacts: ['out/report.txt'],
    });
    const model = new ScriptedModel([
      finish('done early'),
      call('write_file', { path: 'out/report.txt', content: 'r' }),
      finish('done again'),
      shell('echo 3 > out/summary.csv'),
      finish('done'),
    ]);
    const run = await runTrial({
      model,
      task,
      files: { 'data/in.txt': 'a\nb\nc\n' },
      spec: withMiddleware({ name: 'artifact-check' }),
    });
    expect(run.outcome.finished).toBe(true);
    const results = toolResults(run.events);
    expect(results[0]?.output).toBe(
      'Finish refused: required files are missing: out/report.txt, out/summary.csv. Create them in the workspace, then call finish again.',
    );
    expect(results[2]?.output).toMatch(/required file is missing: out\/summary.csv\./);
    expect(results[4]?.output).toBe('Finished.');
    expect(model.requests[1]?.messages.at(-1)?.content).toMatch(/^Finish refused/);
  });

  it('accepts finish after the budget of refusals, so a refusal cannot trap the agent', async () => {
    const model = new ScriptedModel([finish(), finish()]);
    const run = await runTrial({
      model,
      task: taskFor('Write `out/x.txt`.'),
      spec: specWith({
        middleware: [{ name: 'artifact-check' }],
        budgets: { ...defaultHarnessSpec.budgets, maxFinishRefusals: 1 },
      }),
    });
    expect(run.outcome.finished).toBe(true);
    expect(outputs(run)).toEqual([expect.stringMatching(/^Finish refused/), 'Finished.']);
  });

  it('dependency-precheck warns before a command that uses a missing program, and not otherwise', async () => {
    const model = new ScriptedModel([
      shell('no-such-tool-4711 --version | head -n 1'),
      shell("ls | grep -c 'x; fakecmd'"),
      finish(),
    ]);
    const run = await runTrial({ model, spec: withMiddleware({ name: 'dependency-precheck' }) });
    const [first, second] = outputs(run);
    expect(first).toMatch(/\[harness\] this program is not installed: no-such-tool-4711\./);
    expect(second).not.toMatch(/\[harness\]/);
  });

  it('exploration-nudge nudges after the given number of read-only actions in a row', async () => {
    const model = new ScriptedModel([
      shell('ls -la'),
      call('read_file', { path: 'a.txt' }),
      shell('cat a.txt | grep a'),
      shell('echo b > b.txt'),
      shell('ls'),
      finish(),
    ]);
    const run = await runTrial({
      model,
      files: { 'a.txt': 'a' },
      spec: withMiddleware({ name: 'exploration-nudge', maxReadOnlyActions: 3 }),
    });
    const nudged = outputs(run).map((output) => /read-only actions in a row/.test(output));
    expect(nudged).toEqual([false, false, true, false, false, false]);
  });

  it('error-recovery-hints explain lost shell state, missing programs and timeouts', async () => {
    const model = new ScriptedModel([
      shell('cd sub'),
      shell('cat notes.txt'),
      shell('jqq .'),
      shell('sleep 3'),
      finish(),
    ]);
    const run = await runTrial({
      model,
      files: { 'sub/notes.txt': 'n' },
      spec: specWith({
        middleware: [{ name: 'error-recovery-hints' }],
        budgets: { ...defaultHarnessSpec.budgets, commandTimeoutSec: 1 },
      }),
    });
    const results = outputs(run);
    expect(results[0]).not.toMatch(/Hint/);
    expect(results[1]).toMatch(/Hint: A path does not exist\. Each shell call starts afresh/);
    expect(results[2]).toMatch(/Hint: A program is not installed/);
    expect(results[3]).toMatch(/Hint: The command ran out of time/);
  });

  it('output-normalizer strips colour codes, collapses progress bars and repeats, and cuts the middle', async () => {
    const model = new ScriptedModel([
      shell(`printf '\\033[31mred\\033[0m\\n10%%\\r50%%\\r100%%\\n'; for i in 1 2 3 4 5; do echo same; done; echo end`),
      shell('seq 1 3000'),
      finish(),
    ]);
    const run = await runTrial({ model, spec: withMiddleware({ name: 'output-normalizer', maxChars: 400 }) });
    const [first, second] = outputs(run);
    expect(first).toBe('red\n100%\nsame\n[the line above repeats 4 more times]\nend\n[exit code 0]');
    expect(second).toMatch(/^1\n2\n3\n/);
    expect(second).toMatch(/\[… \d+ characters cut from the middle …\]/);
    expect(second).toMatch(/2999\n3000\n\[exit code 0\]$/);
  });
});

describe('declarative rules', () => {
  const rule = (value: Record<string, unknown>) => value as unknown as Rule;

  it('block a matching call with the reason, before it runs', async () => {
    const model = new ScriptedModel([shell('rm -rf data'), shell('ls data'), finish()]);
    const run = await runTrial({
      model,
      files: { 'data/keep.txt': 'k' },
      spec: withRules([
        rule({
          id: 'no-rm',
          trigger: { on: 'tool-call', tool: '^shell$', command: 'rm\\s+-rf' },
          action: { type: 'block', reason: 'Do not delete data.' },
        }),
      ]),
    });
    expect(existsSync(join(run.workspace.hostPath, 'data/keep.txt'))).toBe(true);
    expect(outputs(run)[0]).toBe('Blocked by the harness: Do not delete data. (rule no-rm)');
  });

  it('inject a message with a matching result from the count-th match on, at most maxFirings times', async () => {
    const model = new ScriptedModel([shell('cat a'), shell('cat b'), shell('cat c'), shell('cat d'), finish()]);
    const run = await runTrial({
      model,
      spec: withRules([
        rule({
          id: 'missing-file',
          trigger: { on: 'tool-result', output: 'No such file', exitCode: 'nonzero', count: 2, maxFirings: 2 },
          action: { type: 'inject', message: 'List the folder before reading files.' },
        }),
      ]),
    });
    const fired = outputs(run).map((output) =>
      output.includes('List the folder before reading files. (rule missing-file)'),
    );
    expect(fired).toEqual([false, true, true, false, false]);
  });

  it('run a check on finish and refuse it while the check fails, showing its output', async () => {
    const model = new ScriptedModel([finish(), shell('echo ok > result.txt'), finish()]);
    const run = await runTrial({
      model,
      spec: withRules([
        rule({
          id: 'result-exists',
          trigger: { on: 'finish' },
          action: {
            type: 'check',
            command: 'test -s result.txt || { echo "result.txt is empty or missing"; exit 1; }',
            message: 'The result is not ready.',
          },
        }),
      ]),
    });
    expect(run.outcome.finished).toBe(true);
    expect(outputs(run)[0]).toMatch(
      /^Finish refused: The result is not ready\. Check `test -s result.txt.*` \(exit code 1\):\nresult.txt is empty or missing \(rule result-exists\)$/,
    );
    expect(outputs(run)[2]).toBe('Finished.');
  });

  it('refuse finish once with a verification reminder, then accept', async () => {
    const model = new ScriptedModel([finish(), finish()]);
    const run = await runTrial({
      model,
      spec: withRules([
        rule({
          id: 'verify',
          trigger: { on: 'finish', maxFirings: 1 },
          action: { type: 'refuse-finish', message: 'Re-read the instruction and check each requirement.' },
        }),
      ]),
    });
    expect(outputs(run)).toEqual([
      'Finish refused: Re-read the instruction and check each requirement. (rule verify)',
      'Finished.',
    ]);
  });

  it('run a check after a matching tool result and show its output', async () => {
    const model = new ScriptedModel([call('write_file', { path: 'script.sh', content: 'echo hi' }), finish()]);
    const run = await runTrial({
      model,
      spec: withRules([
        rule({
          id: 'syntax',
          trigger: { on: 'tool-result', tool: 'write_file', command: '\\.sh"' },
          action: { type: 'check', command: 'bash -n script.sh && echo syntax-ok' },
        }),
      ]),
    });
    expect(outputs(run)[0]).toMatch(
      /Check `bash -n script.sh && echo syntax-ok` \(exit code 0\):\nsyntax-ok \(rule syntax\)/,
    );
  });
});

describe('helpers', () => {
  it('reads the programs a command runs, without quoted text, here-documents, builtins or functions', () => {
    expect(
      commandPrograms(
        "cd x && awk '{print $1; exit}' f | sort -u > out; VAR=1 python3 - <<EOF\nimport os; fakecmd\nEOF",
      ),
    ).toEqual(['awk', 'sort', 'python3']);
    expect(commandPrograms('f() { jq .; }; f; for i in 1 2; do echo $i; done')).toEqual(['jq']);
  });

  it('takes workspace paths from an instruction, leaving out commands, placeholders and paths elsewhere', () => {
    expect(
      instructionPaths(
        'Write `out/a.csv` and `/ws/out/b.txt` from `data/` (dates as `DD/MM/YYYY`), archive to `backups/NAME.tar.gz`; run `make test`, not `/etc/hosts` or `*.log`.',
        '/ws',
      ),
    ).toEqual(['out/a.csv', 'out/b.txt', 'data/']);
  });

  it('keeps short clean output as it is', () => {
    expect(normalizeOutput('plain\ntext', { stripAnsi: true, collapseProgress: true, maxChars: 1000 })).toBe(
      'plain\ntext',
    );
  });
});
