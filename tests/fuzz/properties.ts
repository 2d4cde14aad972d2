import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { expect } from 'vitest';
import { EventLog } from '../../core/index.js';
import { type IngestSummary, ingestPaths } from '../../ingest/ingest.js';
import type { Member, Workspace } from './formats.js';
import { applyMutation, type ContentMutation, describeMutation, type Mutation } from './mutations.js';

/** No single ingest of a small mutated workspace may take longer than this. */
export const INGEST_TIME_LIMIT_MS = 20_000;

interface EventRow {
  id: string;
  run_id: string;
  type: string;
  source_file: string | null;
  source_position: string | null;
}

interface RejectRow {
  format: string | null;
  file: string | null;
  position: string | null;
  reason: string;
}

/** What one ingest of a workspace left in the log. */
export interface Snapshot {
  events: EventRow[];
  rejects: RejectRow[];
  summary: IngestSummary;
}

/** Ingests the workspace into a fresh in-memory log and hands the log to `inspect` before closing it. */
export async function withFreshLog<T>(inspect: (log: EventLog) => Promise<T>): Promise<T> {
  const log = await EventLog.open(':memory:');
  try {
    return await inspect(log);
  } finally {
    log.close();
  }
}

export async function ingestBounded(log: EventLog, paths: string[]): Promise<IngestSummary> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`ingest did not finish within ${INGEST_TIME_LIMIT_MS} ms`)),
      INGEST_TIME_LIMIT_MS,
    );
  });
  try {
    return await Promise.race([ingestPaths(log, paths), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function snapshot(log: EventLog, summary: IngestSummary): Promise<Snapshot> {
  const events = await log.query<EventRow & Record<string, unknown>>(
    'SELECT id, run_id, type, source_file, source_position FROM events ORDER BY seq',
  );
  const rejects = await log.query<RejectRow & Record<string, unknown>>(
    'SELECT format, file, position, reason FROM ingest_rejects',
  );
  return { events, rejects, summary };
}

const PROJECTIONS = ['runs', 'steps', 'tool_calls', 'verifications'] as const;

async function projectionRows(log: EventLog): Promise<Record<string, unknown[]>> {
  const rows: Record<string, unknown[]> = {};
  for (const table of PROJECTIONS) rows[table] = await log.query(`SELECT * FROM ${table} ORDER BY ALL`);
  return rows;
}

/** Ingests the untouched workspace once; every mutated run is compared with this. */
export async function baselineOf(workspace: Workspace): Promise<Snapshot> {
  return withFreshLog(async (log) => snapshot(log, await ingestBounded(log, [workspace.root])));
}

/**
 * Applies one mutation to one member file, ingests the workspace into a fresh log and checks every property; the file
 * is restored afterwards whatever happens.
 */
export async function checkMutation(
  workspace: Workspace,
  baseline: Snapshot,
  member: Member,
  mutation: Mutation,
): Promise<void> {
  const original = readFileSync(member.path);
  const mutated = mutate(member, original, mutation);
  try {
    await withFreshLog(async (log) => {
      const context = `${member.path.slice(workspace.root.length + 1)} ${describeMutation(mutation)}`;
      // 1. Bad data never makes the ingest throw or hang.
      const summary = await ingestBounded(log, [workspace.root]);
      const after = await snapshot(log, summary);
      checkRejectsAreComplete(after, context);
      checkUntouchedUnits(baseline, after, member, context);
      checkMissingRecordsAreRejected(baseline, after, member, mutation, mutated, context);
      if (member.json && mutated !== undefined) checkBrokenFileIsRejected(after, member, mutated, context);
      if (member.lines && mutated !== undefined) checkEveryLine(after, member, mutated, context);
      // 4. Projections stay consistent, and a re-import adds nothing.
      const incremental = await projectionRows(log);
      await log.rebuild();
      expect(await projectionRows(log), `rebuild differs from incremental projections: ${context}`).toEqual(
        incremental,
      );
      const again = await ingestBounded(log, [workspace.root]);
      expect(again.totals.appended, `re-ingest appended events: ${context}`).toBe(0);
      expect(await log.countEvents(), `re-ingest changed the event count: ${context}`).toBe(after.events.length);
      const rejectsAgain = await log.query<{ n: number }>('SELECT count(*)::INT AS n FROM ingest_rejects');
      expect(rejectsAgain[0]?.n, `re-ingest kept a second copy of a reject: ${context}`).toBe(after.rejects.length);
    });
  } finally {
    restore(member, original);
  }
}

/** Mutates the member in place; returns its new bytes, or undefined when it is no longer a file. */
function mutate(member: Member, original: Buffer, mutation: Mutation): Buffer | undefined {
  if (mutation.kind === 'remove') {
    rmSync(member.path);
    return undefined;
  }
  if (mutation.kind === 'directory-clash') {
    rmSync(member.path);
    mkdirSync(member.path);
    return undefined;
  }
  const bytes = applyMutation(original, mutation as ContentMutation, member.lines === true);
  writeFileSync(member.path, bytes);
  return bytes;
}

function restore(member: Member, original: Buffer): void {
  rmSync(member.path, { recursive: true, force: true });
  writeFileSync(member.path, original);
}

/** 2. Every reject names its file, a position and a reason; the summary counts what the table holds. */
function checkRejectsAreComplete(after: Snapshot, context: string): void {
  for (const reject of after.rejects) {
    expect(reject.file, `reject without a file: ${context}`).toBeTruthy();
    expect(reject.position, `reject without a position: ${context} ${reject.reason}`).toBeTruthy();
    expect(reject.reason.trim(), `reject without a reason: ${context}`).not.toBe('');
  }
  expect(after.summary.totals.rejects, `summary and ingest_rejects disagree: ${context}`).toBe(after.rejects.length);
}

/** 3a. Runs read only from other units load exactly as in the baseline: same run ids, same event counts. */
function checkUntouchedUnits(baseline: Snapshot, after: Snapshot, member: Member, context: string): void {
  const touched = (file: string | null) =>
    file !== null && (file === member.unit || file.startsWith(`${member.unit}/`));
  const runs = (events: EventRow[]) => {
    const byRun = new Map<string, { count: number; touched: boolean }>();
    for (const event of events) {
      const run = byRun.get(event.run_id) ?? { count: 0, touched: false };
      run.count++;
      run.touched ||= touched(event.source_file);
      byRun.set(event.run_id, run);
    }
    return byRun;
  };
  const before = runs(baseline.events);
  const now = runs(after.events);
  for (const [runId, run] of before) {
    if (run.touched) continue;
    expect(now.get(runId)?.count, `untouched run ${runId} changed: ${context}`).toBe(run.count);
  }
}

/** Mutations that may legitimately take records out of a still valid document (a list emptied, a key renamed). */
function mayRemoveRecords(mutation: Mutation, mutated: Buffer | undefined): boolean {
  if (mutated === undefined || mutation.kind === 'empty' || mutation.kind === 'delete-field') return true;
  if (mutated.toString('utf8').trim() === '') return true;
  if (mutation.kind === 'wrong-type') {
    const value = mutation.value;
    return value === null || (typeof value === 'object' && Object.keys(value as object).length === 0);
  }
  const isByteMutation = ['truncate', 'flip-byte', 'insert-bytes', 'delete-bytes', 'invalid-utf8'].includes(
    mutation.kind,
  );
  return isByteMutation && parsesAsJson(mutated);
}

/** Mutations after which records are compared by id: positions move, ids stay. */
function movesRecords(mutation: Mutation): boolean {
  return ['duplicate-item', 'reorder-items', 'duplicate-line', 'reorder-lines'].includes(mutation.kind);
}

/**
 * 3b. A record of the baseline that is gone after the mutation was rejected: some reject names its file, at its
 * position or above it (a whole-file position), unless the file is gone, was skipped with a reason, or the mutation
 * may remove records from a valid document.
 */
function checkMissingRecordsAreRejected(
  baseline: Snapshot,
  after: Snapshot,
  member: Member,
  mutation: Mutation,
  mutated: Buffer | undefined,
  context: string,
): void {
  const skipped = new Set(after.summary.skipped.map((entry) => entry.path));
  // Deep nesting wraps a value in arrays: an array's items all move into its first item, so a reject of `X[0]`
  // accounts for every record that stood at `X[i]`.
  const wrappedArray = (rejected: string) =>
    mutation.kind === 'deep-nesting' && rejected.endsWith('[0]') ? rejected.slice(0, -'[0]'.length) : undefined;
  const explainedIn = (file: string, position: string | null) =>
    after.rejects.some((reject) => {
      if (reject.file !== file) return false;
      if (position === null || isWholeFilePosition(reject.position)) return true;
      const rejected = reject.position ?? '';
      const wrapped = wrappedArray(rejected);
      return position.startsWith(rejected) || (wrapped !== undefined && position.startsWith(`${wrapped}[`));
    });
  if (movesRecords(mutation)) {
    // Positions and ids move with duplicated or reordered items; the records of each type in each file are counted.
    const count = (events: EventRow[]) => {
      const counts = new Map<string, number>();
      for (const event of events) {
        const key = `${event.type}\u0000${event.source_file}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      return counts;
    };
    const now = count(after.events);
    for (const [key, before] of count(baseline.events)) {
      const [type, file = ''] = key.split('\u0000');
      if ((now.get(key) ?? 0) >= before || !isFile(file) || skipped.has(file) || explainedIn(file, null)) continue;
      expect.fail(
        `${type} records of ${file.slice(-60)} went from ${before} to ${now.get(key) ?? 0} without a reject: ${context}`,
      );
    }
    return;
  }
  const key = (event: EventRow) => `${event.type}\u0000${event.source_file}\u0000${event.source_position}`;
  const present = new Set(after.events.map(key));
  for (const event of baseline.events) {
    if (present.has(key(event))) continue;
    const file = event.source_file ?? '';
    if (!isFile(file) || skipped.has(file)) continue;
    // A cut JSON-lines file loses whole lines after the cut: those are gone, not broken (lines are checked one by one).
    const cutLines = member.lines === true && mutation.kind === 'truncate';
    if (file === member.path && (cutLines || mayRemoveRecords(mutation, mutated))) continue;
    expect(
      explainedIn(file, event.source_position),
      `record ${event.type} at ${file.slice(-60)} ${event.source_position} (${event.id}) vanished without a reject: ${context}`,
    ).toBe(true);
  }
}

/** Positions that name no record inside the document: `(root)`, `whole file`, `line 3 column 5`, `$`, `file`. */
function isWholeFilePosition(position: string | null): boolean {
  return position === null || !/[[.]/.test(position.replace(/^line \d+ column \d+$/, ''));
}

/** 2b. A JSON member that no longer parses (or is no UTF-8) is rejected by name, with a position, or skipped. */
function checkBrokenFileIsRejected(after: Snapshot, member: Member, mutated: Buffer, context: string): void {
  if (member.lines || mutated.toString('utf8').trim() === '') return;
  if (isValidUtf8(mutated) && parsesAsJson(mutated)) return;
  const skipped = after.summary.skipped.some((entry) => entry.path === member.path);
  const rejected = after.rejects.some((reject) => reject.file === member.path);
  expect(skipped || rejected, `broken JSON file neither rejected nor skipped: ${context}`).toBe(true);
}

/**
 * 3c. JSON-lines: every non-blank line is accounted for, line by line: its event is in the log (by id), or the line
 * is rejected at `line N`. A line that is not valid UTF-8 must be rejected.
 */
function checkEveryLine(after: Snapshot, member: Member, mutated: Buffer, context: string): void {
  const skipped = after.summary.skipped.find((entry) => entry.path === member.path);
  const rejectedLines = new Set(
    after.rejects.filter((reject) => reject.file === member.path).map((reject) => reject.position?.split(':')[0]),
  );
  const loadedIds = new Set(after.events.map((event) => `${event.run_id}\u0000${event.id}`));
  const loadedLines = new Set(
    after.events
      .filter((event) => event.source_file === member.path)
      .map((event) => event.source_position?.split(':')[0]),
  );
  let start = 0;
  for (let number = 1; start <= mutated.length; number++) {
    const newline = mutated.indexOf(10, start);
    const end = newline === -1 ? mutated.length : newline;
    const bytes = mutated.subarray(start, end);
    start = end + 1;
    const text = bytes.toString('utf8');
    if (text.trim() === '') continue;
    const where = `line ${number} of ${member.path.slice(-40)}: ${text.slice(0, 120)}`;
    expect(skipped, `file with a record on ${where} was skipped (${skipped?.reason}): ${context}`).toBeUndefined();
    if (!isValidUtf8(bytes)) {
      expect(rejectedLines.has(`line ${number}`), `line with invalid UTF-8 not rejected, ${where}: ${context}`).toBe(
        true,
      );
      continue;
    }
    if (!member.eventPerLine || rejectedLines.has(`line ${number}`) || loadedLines.has(`line ${number}`)) continue;
    const parsed = parseJsonOrUndefined(text) as { id?: unknown; runId?: unknown } | undefined;
    const loaded = typeof parsed?.id === 'string' && loadedIds.has(`${String(parsed.runId)}\u0000${parsed.id}`);
    expect(loaded, `line neither loaded nor rejected, ${where}: ${context}`).toBe(true);
  }
}

function parsesAsJson(bytes: Buffer): boolean {
  return parseJsonOrUndefined(bytes.toString('utf8')) !== undefined;
}

function parseJsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

export function isValidUtf8(bytes: Buffer): boolean {
  try {
    strictUtf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
