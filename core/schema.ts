/**
 * The storage layout. `events` is the append-only log: rows are only ever inserted. Everything else is derived
 * from it and can be rebuilt (`selfharness rebuild`).
 */
import { runEventTypes } from './events.js';

export const SCHEMA_VERSION = 1;

export const CREATE_TABLES = `
CREATE TABLE IF NOT EXISTS events (
  seq BIGINT NOT NULL,
  id VARCHAR NOT NULL,
  type VARCHAR NOT NULL,
  run_id VARCHAR NOT NULL,
  time TIMESTAMPTZ,
  source_format VARCHAR,
  source_file VARCHAR,
  source_position VARCHAR,
  data JSON NOT NULL,
  recorded_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS ingest_rejects (
  id VARCHAR NOT NULL,
  format VARCHAR,
  file VARCHAR,
  position VARCHAR,
  reason VARCHAR NOT NULL,
  raw VARCHAR,
  recorded_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS selfharness_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
-- Runs with events appended since the projections were last brought up to date, with a lower bound of the sequence
-- numbers of those events: the appends of every connection (a server's, a job's, an import's two) see each other's.
-- Emptied whenever the projections are brought up to date, which opening the log does after a crash.
CREATE TABLE IF NOT EXISTS unprojected_runs (run_id VARCHAR, first_seq BIGINT);
CREATE TABLE IF NOT EXISTS runs (
  run_id VARCHAR NOT NULL,
  source_format VARCHAR,
  source_file VARCHAR,
  dataset VARCHAR,
  task VARCHAR,
  model VARCHAR,
  agent VARCHAR,
  agent_version VARCHAR,
  harness_version VARCHAR,
  attempt INTEGER,
  split VARCHAR,
  seed BIGINT,
  trial_name VARCHAR,
  parent_run_id VARCHAR,
  relation VARCHAR,
  outcome VARCHAR NOT NULL,
  reward DOUBLE,
  failure_reason VARCHAR,
  prompt_tokens BIGINT,
  completion_tokens BIGINT,
  cost_usd DOUBLE,
  started_at TIMESTAMPTZ,
  ended_at TIMESTAMPTZ,
  step_count INTEGER NOT NULL,
  tool_call_count INTEGER NOT NULL,
  first_seq BIGINT NOT NULL,
  last_seq BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS steps (
  run_id VARCHAR NOT NULL,
  step INTEGER NOT NULL,
  role VARCHAR NOT NULL,
  message VARCHAR,
  reasoning VARCHAR,
  model VARCHAR,
  prompt_tokens BIGINT,
  completion_tokens BIGINT,
  cached_tokens BIGINT,
  cost_usd DOUBLE,
  time TIMESTAMPTZ,
  seq BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS tool_calls (
  run_id VARCHAR NOT NULL,
  step INTEGER NOT NULL,
  call_id VARCHAR NOT NULL,
  tool VARCHAR NOT NULL,
  arguments JSON,
  command VARCHAR,
  exit_code INTEGER,
  output_excerpt VARCHAR,
  output_chars BIGINT,
  error VARCHAR,
  call_seq BIGINT NOT NULL,
  result_seq BIGINT
);
CREATE TABLE IF NOT EXISTS verifications (
  run_id VARCHAR NOT NULL,
  test_name VARCHAR NOT NULL,
  status VARCHAR NOT NULL,
  message VARCHAR,
  duration_ms DOUBLE,
  reward DOUBLE,
  seq BIGINT NOT NULL
);
`;

/** The event types of a run (`runEventTypes`) as a SQL list, for `type IN (…)`: other streams are no runs. */
export const RUN_EVENT_TYPES_SQL = runEventTypes.map((type) => `'${type}'`).join(', ');

/** The tables derived from the log, in the order they are rebuilt. */
export const PROJECTION_TABLES = ['runs', 'steps', 'tool_calls', 'verifications'] as const;
export type ProjectionTable = (typeof PROJECTION_TABLES)[number];
