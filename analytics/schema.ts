import type { Database } from '../core/index.js';

/**
 * Tables that mining writes. Like the projections, they are derived and can be recomputed (`selfharness mine`); the
 * log stays the only source of truth. Diagnoses are events (`diagnosis-create`), not rows here.
 *
 * - `embedding_cache`: one vector per embedder and content hash, so a second mining run embeds nothing new.
 * - `weakness_clusters` / `weakness_cluster_members`: the clusters of the latest mining run per `mining_id` (a hash
 *   of the mining options), ranked, with their cards; members are the detections (run, mechanism, steps, excerpt).
 */
export const MINING_TABLES = `
CREATE TABLE IF NOT EXISTS embedding_cache (
  embedder VARCHAR NOT NULL,
  content_hash VARCHAR NOT NULL,
  dimensions INTEGER NOT NULL,
  vector FLOAT[] NOT NULL,
  created_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (embedder, content_hash)
);
CREATE TABLE IF NOT EXISTS weakness_clusters (
  mining_id VARCHAR NOT NULL,
  cluster_id VARCHAR NOT NULL,
  rank INTEGER NOT NULL,
  label VARCHAR NOT NULL,
  mode VARCHAR NOT NULL,
  criticality VARCHAR NOT NULL,
  failure_count INTEGER NOT NULL,
  run_count INTEGER NOT NULL,
  task_count INTEGER NOT NULL,
  mechanisms VARCHAR[] NOT NULL,
  tasks VARCHAR[] NOT NULL,
  models VARCHAR[] NOT NULL,
  score DOUBLE NOT NULL,
  card JSON NOT NULL,
  created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS weakness_cluster_members (
  mining_id VARCHAR NOT NULL,
  cluster_id VARCHAR NOT NULL,
  run_id VARCHAR NOT NULL,
  mechanism VARCHAR NOT NULL,
  first_step INTEGER,
  evidence_steps INTEGER[] NOT NULL,
  excerpt VARCHAR
);
`;

/** Creates the mining tables and the analyst views. Needs a database opened for writing. */
export async function installAnalytics(database: Database): Promise<void> {
  await database.run(MINING_TABLES);
}
