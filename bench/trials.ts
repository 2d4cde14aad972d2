/**
 * Trial benchmark. (1) Sandbox overhead per trial: creating a trial (workspace, /tmp, logs), running one short
 * command in it and removing it, in bubblewrap, against the same steps unsandboxed in the same process (the same code
 * path without bwrap). (2) Trials per minute with the oracle at concurrency 1 and 2, logging into a fresh DuckDB file:
 * setup, the reference solution and the verifier of real suite tasks, every event appended as in `selfharness run`.
 *
 *   npm run bench:trials [-- --iterations 40 --tasks held-out]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatTable } from '../cli/output.js';
import { EventLog } from '../core/index.js';
import { createOracleAgent, loadSuite, openSandbox, runTrials, type Sandbox, selectTasks } from '../tasks/index.js';

const { values } = parseArgs({
  options: {
    iterations: { type: 'string', default: '40' },
    tasks: { type: 'string', default: 'held-out' },
    json: { type: 'boolean', default: false },
  },
});
const iterations = Number(values.iterations);
const limits = { timeoutMs: 30_000, maxOutputBytes: 64 * 1024 };

/** Milliseconds per trial for create + one command + dispose, after a few warm-up rounds. */
async function trialOverhead(sandbox: Sandbox, command: string): Promise<{ median: number; mean: number }> {
  const once = async () => {
    const started = performance.now();
    const trial = sandbox.createTrial();
    const result = await trial.workspace.exec(command, limits);
    await trial.dispose();
    if (result.exitCode !== 0) throw new Error(`${command} failed: ${result.output}`);
    return performance.now() - started;
  };
  for (let warmUp = 0; warmUp < 3; warmUp++) await once();
  const times: number[] = [];
  for (let round = 0; round < iterations; round++) times.push(await once());
  times.sort((a, b) => a - b);
  return {
    median: times[Math.floor(times.length / 2)]!,
    mean: times.reduce((sum, time) => sum + time, 0) / times.length,
  };
}

const sandboxed = await openSandbox();
const unsandboxed = await openSandbox({ unsafeNoSandbox: true });
const rows: Record<string, unknown>[] = [];
for (const command of ['true', 'ls -la > /dev/null && echo ok > out.txt']) {
  const inside = await trialOverhead(sandboxed, command);
  const outside = await trialOverhead(unsandboxed, command);
  rows.push({
    measure: `trial with \`${command}\``,
    bubblewrap_ms: inside.median.toFixed(1),
    unsandboxed_ms: outside.median.toFixed(1),
    overhead_ms: (inside.median - outside.median).toFixed(1),
    ratio: (inside.median / outside.median).toFixed(2),
  });
}
if (!values.json) {
  console.log(`Sandbox overhead per trial (median of ${iterations}; create workspace, one command, remove):\n`);
  console.log(formatTable(rows));
}

const suite = loadSuite();
const tasks = selectTasks(suite, values.tasks.split(','));
const folder = mkdtempSync(join(tmpdir(), 'selfharness-bench-trials-'));
const throughput: Record<string, unknown>[] = [];
try {
  for (const concurrency of [1, 2]) {
    const log = await EventLog.open(join(folder, `concurrency-${concurrency}.duckdb`));
    try {
      const started = performance.now();
      const batch = await runTrials({ log, tasks, agent: createOracleAgent(), concurrency, sandbox: sandboxed });
      const seconds = (performance.now() - started) / 1000;
      const passed = batch.results.filter((result) => result.outcome === 'passed').length;
      throughput.push({
        concurrency,
        trials: batch.results.length,
        passed,
        seconds: seconds.toFixed(1),
        trials_per_minute: ((batch.results.length / seconds) * 60).toFixed(1),
        seconds_per_trial: (seconds / batch.results.length).toFixed(2),
      });
    } finally {
      log.close();
    }
  }
} finally {
  rmSync(folder, { recursive: true, force: true });
}
if (values.json) console.log(JSON.stringify({ iterations, tasks: values.tasks, overhead: rows, throughput }));
else {
  console.log(`\nOracle trials (tasks: ${values.tasks}; setup, solution, verifier, events logged to DuckDB):\n`);
  console.log(formatTable(throughput));
}
