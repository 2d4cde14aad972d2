import { readdirSync, readFileSync } from 'node:fs';

/**
 * Reading Linux's process table, to stop what a sandboxed command started without stopping the shell that runs it:
 * the processes inside a sandbox are visible from the host under their host process ids.
 */

interface ProcessEntry {
  readonly pid: number;
  readonly parentPid: number;
}

function readProcessTable(): ProcessEntry[] {
  const entries: ProcessEntry[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      // The command name (field 2) may hold spaces and parentheses: the fields after it follow its last `)`.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      entries.push({ pid: Number(name), parentPid: Number(fields[1]) });
    } catch {
      // The process ended while the table was read.
    }
  }
  return entries;
}

/** The process ids of every descendant of `pid` (children first), not `pid` itself. */
export function listDescendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readProcessTable()) {
    const siblings = children.get(entry.parentPid) ?? [];
    siblings.push(entry.pid);
    children.set(entry.parentPid, siblings);
  }
  const found: number[] = [];
  const queue = [...(children.get(pid) ?? [])];
  while (queue.length > 0) {
    const next = queue.shift()!;
    found.push(next);
    queue.push(...(children.get(next) ?? []));
  }
  return found;
}

/**
 * The host process id of the descendant of `ancestor` whose id inside its innermost PID namespace is `innerPid`
 * (the `NSpid` line of `/proc/PID/status`), or `undefined`.
 */
export function findByInnerPid(ancestor: number, innerPid: number): number | undefined {
  for (const pid of [ancestor, ...listDescendants(ancestor)]) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'latin1');
      const line = /^NSpid:\s*(.+)$/m.exec(status)?.[1];
      const ids = line?.trim().split(/\s+/).map(Number) ?? [];
      if (ids.at(-1) === innerPid) return pid;
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined;
}

/** Sends SIGKILL to each process, ignoring those already gone. */
export function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/** Whether a process with this id exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
