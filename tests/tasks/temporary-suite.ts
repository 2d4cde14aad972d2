import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A task for a suite written on the fly: the scripts' bodies, in Harbor's layout. */
export interface TemporaryTask {
  readonly id: string;
  readonly setup?: string;
  readonly solve: string;
  /** The verifier's body; by default it passes when `done.txt` holds `done`. */
  readonly test?: string;
  readonly agentTimeoutSec?: number;
  readonly verifierTimeoutSec?: number;
  readonly split?: 'held-in' | 'held-out' | 'sealed';
}

/** Writes a verifier that writes reward 1 when COMMAND succeeds, with one CTRF test. */
export function verifierFor(command: string, name = 'result'): string {
  return `if ${command}; then status=passed; reward=1; else status=failed; reward=0; fi
logs="\${SELFHARNESS_LOGS:-/logs}/verifier"
mkdir -p "$logs"
echo "$reward" > "$logs/reward.txt"
printf '{"results":{"tests":[{"name":"${name}","status":"%s"}]}}' "$status" > "$logs/ctrf.json"`;
}

/** Writes a small suite (splits.json and suite/) into a new temporary folder and returns the folder. */
export function writeSuite(tasks: readonly TemporaryTask[]): string {
  const root = mkdtempSync(join(tmpdir(), 'selfharness-suite-'));
  const splits: Record<string, string[]> = { 'held-in': [], 'held-out': [], sealed: [] };
  for (const task of tasks) {
    const folder = join(root, 'suite', task.id);
    for (const part of ['environment', 'solution', 'tests']) mkdirSync(join(folder, part), { recursive: true });
    writeFileSync(
      join(folder, 'task.toml'),
      `[metadata]\ncategory = "test"\ndifficulty = "easy"\nrequired_artifacts = ["done.txt"]\n\n[agent]\ntimeout_sec = ${task.agentTimeoutSec ?? 60}\n\n[verifier]\ntimeout_sec = ${task.verifierTimeoutSec ?? 30}\n`,
    );
    writeFileSync(join(folder, 'instruction.md'), `Write done into done.txt (${task.id}).\n`);
    if (task.setup !== undefined)
      writeFileSync(join(folder, 'environment', 'setup.sh'), `#!/bin/bash\n${task.setup}\n`);
    writeFileSync(join(folder, 'solution', 'solve.sh'), `#!/bin/bash\n${task.solve}\n`);
    const test = task.test ?? verifierFor('[ "$(cat done.txt 2>/dev/null)" = done ]');
    writeFileSync(join(folder, 'tests', 'test.sh'), `#!/bin/bash\n${test}\n`);
    for (const script of ['solution/solve.sh', 'tests/test.sh']) chmodSync(join(folder, script), 0o755);
    splits[task.split ?? 'held-in']!.push(task.id);
  }
  writeFileSync(join(root, 'splits.json'), JSON.stringify(splits, null, 2));
  return root;
}

/** Whether any process on this machine has this text in its command line (sandboxed ones included). */
export function processWithArgument(text: string): boolean {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').includes(text)) return true;
    } catch {
      // Gone.
    }
  }
  return false;
}

/** Polls until the condition holds or the time is up; returns whether it held. */
export async function waitUntil(condition: () => boolean, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return condition();
}
