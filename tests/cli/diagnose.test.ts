import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLog } from '../../core/index.js';
import { runCli } from '../support/cli.js';
import { sampleRun } from '../support/events.js';
import { chatReply, type OpenAiTestServer, startOpenAiServer } from '../support/openai-server.js';

const reply = {
  terminal_cause: 'output.txt was never written',
  criticality: 'root-cause',
  agent_mechanism: 'missing-required-artifact',
  evidence_step_ids: [2],
  reasoning: 'The agent stopped after step 2 without writing output.txt.',
};

describe('selfharness diagnose', () => {
  let folder: string;
  let server: OpenAiTestServer;

  async function createDatabase(name: string): Promise<string> {
    const db = join(folder, name);
    const log = await EventLog.open(db);
    try {
      await log.appendEvents([...sampleRun('run-1'), ...sampleRun('run-2'), ...sampleRun('run-ok', 'passed')]);
    } finally {
      log.close();
    }
    return db;
  }

  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'selfharness-diagnose-'));
    server = await startOpenAiServer();
  });
  afterAll(() => server.close());

  const environment = () => ({
    SELFHARNESS_LLM_BASE_URL: server.baseUrl,
    SELFHARNESS_LLM_MODEL: 'judge-1',
    SELFHARNESS_LLM_API_KEY: 'test-key',
    SELFHARNESS_LLM_BACKOFF_MS: '1',
  });

  it('says what to set when no endpoint is configured', async () => {
    const db = await createDatabase('unconfigured.duckdb');
    const result = await runCli(['--db', db, 'diagnose'], { SELFHARNESS_LLM_BASE_URL: '', SELFHARNESS_LLM_MODEL: '' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /^error: No model endpoint configured: set SELFHARNESS_LLM_BASE_URL to an OpenAI-compatible API .*SELFHARNESS_LLM_MODEL/,
    );
  });

  it('diagnoses the failed runs, sends the key, and pays nothing for them the second time', async () => {
    const db = await createDatabase('diagnosed.duckdb');
    const before = server.requests.length;
    server.enqueue(chatReply(reply), chatReply(reply));
    const first = await runCli(['--db', db, '--json', 'diagnose', '--concurrency', '2'], environment());
    expect(first.code).toBe(0);
    const summary = JSON.parse(first.stdout);
    expect(summary).toMatchObject({ llmModel: 'judge-1', failedRuns: 2, diagnosed: 2, cached: 0, rejected: 0 });
    expect(server.requests.length - before).toBe(2);
    expect(server.requests.at(-1)?.headers.authorization).toBe('Bearer test-key');

    const second = await runCli(['--db', db, 'diagnose'], environment());
    expect(second.code).toBe(0);
    expect(second.stdout).toContain(
      '0 diagnosed now, 2 diagnosed before (not asked again), 0 rejected, 0 failed requests',
    );
    expect(server.requests.length - before).toBe(2);

    const stored = await runCli([
      '--db',
      db,
      '--json',
      'sql',
      "select run_id, data->>'mechanism' as mechanism from events where type = 'diagnosis-create' order by run_id",
    ]);
    expect(JSON.parse(stored.stdout)).toEqual([
      { run_id: 'run-1', mechanism: 'missing-required-artifact' },
      { run_id: 'run-2', mechanism: 'missing-required-artifact' },
    ]);
  });

  it('prints the diagnoses and the rejected replies, which `rejects` keeps', async () => {
    const db = await createDatabase('rejected.duckdb');
    server.enqueue(chatReply(reply), chatReply({ ...reply, evidence_step_ids: [9] }));
    const result = await runCli(['--db', db, 'diagnose', '--concurrency', '1'], environment());
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      '1 diagnosed now, 0 diagnosed before (not asked again), 1 rejected, 0 failed requests',
    );
    expect(result.stdout).toMatch(/run-1\s+root-cause\s+missing-required-artifact\s+2\s+output\.txt was never written/);
    expect(result.stdout).toContain('rejected run-2: evidence step 9 is not in run run-2 (its steps are 1–2)');
    const rejects = await runCli(['--db', db, '--json', 'rejects']);
    expect(JSON.parse(rejects.stdout)).toMatchObject([
      { format: 'diagnosis', file: 'run-2', reason: expect.stringContaining('evidence step 9 is not in run run-2') },
    ]);
  });
});
