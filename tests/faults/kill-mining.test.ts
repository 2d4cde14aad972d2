import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MiningResult } from '../../analytics/mine.js';
import { EventLog } from '../../core/index.js';
import { runCli, startCli } from '../support/cli.js';
import { weaknessEvents } from '../support/mining-log.js';
import { writeTinyEmbeddingModel } from '../support/tiny-embedding-model.js';

/**
 * `selfharness mine` killed with SIGKILL at several points of its work (opening, detecting, embedding, writing the
 * clusters): the log opens afterwards with no half-written mining, and mining again gives exactly the clusters of an
 * uninterrupted run.
 */

const folder = mkdtempSync(join(tmpdir(), 'selfharness-kill-mine-'));
const modelFolder = writeTinyEmbeddingModel(join(folder, 'model'));
const base = join(folder, 'base.duckdb');
const args = ['mine', '--json', '--embedder', `transformers:${modelFolder}`, '--seed', '5'];

afterAll(() => rmSync(folder, { recursive: true, force: true }));

async function mine(database: string): Promise<MiningResult> {
  const result = await runCli(['--db', database, ...args]);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as MiningResult;
}

/** Starts mining and kills it after `delayMs`; resolves when the process is gone. */
async function mineAndKill(database: string, delayMs: number): Promise<void> {
  const child = startCli(['--db', database, ...args]);
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  child.kill('SIGKILL');
  await exited;
}

describe('selfharness mine killed with SIGKILL', () => {
  let reference: MiningResult;
  let referenceMs: number;

  beforeAll(async () => {
    const log = await EventLog.open(base);
    await log.appendEvents(weaknessEvents());
    log.close();
    const copy = join(folder, 'reference.duckdb');
    copyFileSync(base, copy);
    const started = performance.now();
    reference = await mine(copy);
    referenceMs = performance.now() - started;
  }, 60_000);

  it('leaves a log with whole minings only, and mining again gives the uninterrupted clusters', async () => {
    expect(reference.clusters.length).toBeGreaterThan(0);
    for (const fraction of [0.5, 0.85]) {
      const database = join(folder, `killed-${fraction}.duckdb`);
      copyFileSync(base, database);
      await mineAndKill(database, Math.round(referenceMs * fraction));

      const check = await runCli([
        '--db',
        database,
        '--json',
        'sql',
        `SELECT (SELECT count(*) FROM weakness_cluster_members m
                 WHERE m.mining_id NOT IN (SELECT mining_id FROM weakness_clusters)) AS orphan_members,
                (SELECT count(*) FROM embedding_cache WHERE dimensions <> len(vector)) AS bad_vectors,
                (SELECT count(*) FROM events) AS events`,
      ]);
      expect(check.code, `${fraction}: ${check.stderr}`).toBe(0);
      expect(JSON.parse(check.stdout)).toEqual([
        { orphan_members: 0, bad_vectors: 0, events: weaknessEvents().length },
      ]);

      const again = await mine(database);
      expect(again.clusters, `killed at ${fraction} of the run`).toEqual(reference.clusters);
    }
  }, 120_000);
});
