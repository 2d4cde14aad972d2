import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { EventLog } from '../../core/index.js';
import { type IngestSummary, ingestPaths } from '../../ingest/ingest.js';

export interface IngestedFolder {
  root: string;
  summary: IngestSummary;
  events: { id: string; type: string; source_file: string; source_position: string }[];
  rejects: { file: string; position: string; reason: string }[];
  runs: { run_id: string; outcome: string; reward: number | null }[];
}

/**
 * Writes `files` (relative path → content) into a fresh temp folder, ingests it into a fresh in-memory log the way a
 * user would (`ingestPaths` on the folder), and returns what the log holds. For the deterministic regression tests of
 * bugs the fuzzer found.
 */
export async function ingestFiles(files: Record<string, string | Buffer>): Promise<IngestedFolder> {
  const root = mkdtempSync(join(tmpdir(), 'selfharness-regression-'));
  const log = await EventLog.open(':memory:');
  try {
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), content);
    }
    const summary = await ingestPaths(log, [root]);
    const events = await log.query<IngestedFolder['events'][number]>(
      'SELECT id, type, source_file, source_position FROM events ORDER BY seq',
    );
    const rejects = await log.query<IngestedFolder['rejects'][number]>(
      'SELECT file, position, reason FROM ingest_rejects ORDER BY file, position',
    );
    const runs = await log.query<IngestedFolder['runs'][number]>(
      'SELECT run_id, outcome, reward FROM runs ORDER BY run_id',
    );
    return { root, summary, events, rejects, runs };
  } finally {
    log.close();
    rmSync(root, { recursive: true, force: true });
  }
}
