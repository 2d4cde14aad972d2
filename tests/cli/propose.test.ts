import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLog } from '../../core/index.js';
import { listProposals } from '../../proposer/index.js';
import { runCli } from '../support/cli.js';
import { scriptedRun, weaknessEvents } from '../support/mining-log.js';
import { chatReply, type OpenAiTestServer, startOpenAiServer } from '../support/openai-server.js';

const folder = mkdtempSync(join(tmpdir(), 'selfharness-propose-cli-'));
const db = join(folder, 'propose.duckdb');
let server: OpenAiTestServer;

beforeAll(async () => {
  server = await startOpenAiServer();
  const log = await EventLog.open(db);
  const secret = { command: 'make test', output: 'SECRET-HELD-OUT make: *** [test] Error 9', exitCode: 2 };
  await log.appendEvents([
    ...weaknessEvents(),
    // Held-out runs failing like the held-in ones: they must never reach the proposer.
    ...['h1', 'h2'].flatMap((task, index) =>
      scriptedRun({
        runId: `heldout-run-${index + 1}`,
        task: `heldout-${task}`,
        split: 'held-out',
        outcome: 'failed',
        calls: [secret, secret, secret],
      }),
    ),
  ]);
  log.close();
});

afterAll(async () => {
  await server.close();
  rmSync(folder, { recursive: true, force: true });
});

describe('selfharness propose and proposals', () => {
  it('mines the held-in runs, prints diverse candidates, and records them once', async () => {
    const result = await runCli(['--db', db, 'propose', '--candidates', '3']);
    expect(result.code, result.stderr).toBe(0);
    const output = result.stdout;
    expect(output).toMatch(/^Harness [0-9a-f]{12}; 2 weakness clusters from held-in runs; proposer rules\./);
    expect(output).toContain('cluster');
    expect(output).toContain('(#1 Repeated failed command: `make test`) · mechanism repeated-failed-command');
    expect(output).toContain(
      '   surface /middleware\n   patch: add /middleware/- {"name":"failed-command-guard","maxFailures":2}',
    );
    expect(output).toContain('   surface /rules');
    expect(output).toContain('   surface /instructions/recovery');
    expect(output).toContain('expected: A shell command that already failed 2 times is blocked');
    expect(output).toContain('preserve: The 2 passing runs on these tasks (pass-1, pass-2) must still pass');
    expect(output).not.toContain('heldout');
    expect(output).not.toContain('SECRET');
    expect(output.match(/^\d\. proposal [0-9a-f]{12} · risk (low|medium|high)$/gm)).toHaveLength(3);

    const again = await runCli(['--db', db, '--json', 'propose', '--candidates', '3']);
    expect(again.code, again.stderr).toBe(0);
    const report = JSON.parse(again.stdout) as { candidates: { proposalId: string; recorded: boolean }[] };
    expect(report.candidates.map((candidate) => candidate.recorded)).toEqual([false, false, false]);

    const log = await EventLog.open(db, { readOnly: true });
    const records = await listProposals(log);
    log.close();
    expect(records.map((record) => record.proposalId)).toEqual(
      report.candidates.map((candidate) => candidate.proposalId),
    );
    expect(records.every((record) => record.status === 'proposed' && record.proposer === 'rules')).toBe(true);
  });

  it('asks a model with --proposer llm, records the valid candidate, and keeps the rejected one with its reason', async () => {
    const log = await EventLog.open(db, { readOnly: true });
    const clusterId = (
      await log.query<{ cluster_id: string }>(
        "SELECT cluster_id FROM weakness_clusters WHERE label LIKE 'Missing dependency%' LIMIT 1",
      )
    )[0]!.cluster_id;
    log.close();
    server.enqueue(
      chatReply({
        candidates: [
          {
            clusterId,
            surface: '/budgets/maxTurns',
            patch: [{ op: 'replace', path: '/budgets/maxTurns', value: 60 }],
            expectedEffect: 'More turns to work around missing modules.',
            preserve: 'Short runs cost the same.',
            risk: 'medium',
          },
          {
            clusterId,
            surface: '/tools',
            patch: [{ op: 'remove', path: '/tools/shell' }],
            expectedEffect: 'No shell, no missing modules.',
            preserve: 'Nothing.',
            risk: 'high',
          },
        ],
      }),
    );
    const result = await runCli(['--db', db, 'propose', '--proposer', 'llm', '--candidates', '2'], {
      SELFHARNESS_LLM_BASE_URL: server.baseUrl,
      SELFHARNESS_LLM_MODEL: 'scripted-model',
      SELFHARNESS_LLM_MAX_RETRIES: '0',
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('proposer llm:scripted-model');
    expect(result.stdout).toContain('patch: replace /budgets/maxTurns 60');
    expect(result.stdout).toContain('1 rejected:');
    expect(result.stdout).toContain('operation 0 (remove /tools/shell): not an editable surface');
    const prompt = JSON.stringify(server.chatRequests().at(-1));
    expect(prompt).toContain(clusterId);
    expect(prompt).not.toContain('heldout');
    expect(prompt).not.toContain('SECRET');

    const after = await EventLog.open(db, { readOnly: true });
    const rejects = await after.query<{ reason: string; file: string }>(
      "SELECT reason, file FROM ingest_rejects WHERE format = 'proposal'",
    );
    const proposers = await after.query<{ proposer: string }>(
      "SELECT data->>'proposer' AS proposer FROM events WHERE type = 'proposal-create' ORDER BY seq",
    );
    after.close();
    expect(rejects).toEqual([{ file: 'llm:scripted-model', reason: expect.stringContaining('remove /tools/shell') }]);
    expect(proposers.map((row) => row.proposer)).toEqual(['rules', 'rules', 'rules', 'llm:scripted-model']);
  });

  it('shows each proposal with its latest decision', async () => {
    const log = await EventLog.open(db);
    const [first] = await log.query<{ id: string }>(
      "SELECT data->>'proposalId' AS id FROM events WHERE type = 'proposal-create' ORDER BY seq LIMIT 1",
    );
    await log.appendEvents([
      {
        id: `validation:${first!.id}:replay`,
        runId: `proposal:${first!.id}`,
        type: 'validation-decide',
        data: {
          proposalId: first!.id,
          stage: 'replay',
          decision: 'screened-out',
          reasons: ['never fired on its target cluster'],
          metrics: {},
        },
      },
    ]);
    log.close();
    const result = await runCli(['--db', db, 'proposals']);
    expect(result.code, result.stderr).toBe(0);
    const line = result.stdout.split('\n').find((text) => text.startsWith(first!.id));
    expect(line).toContain('screened-out');
    expect(line).toContain('never fired on its target cluster');
    const json = await runCli(['--db', db, '--json', 'proposals', '--status', 'screened-out']);
    expect((JSON.parse(json.stdout) as { proposalId: string }[]).map((record) => record.proposalId)).toEqual([
      first!.id,
    ]);
  });

  it('refuses to show held-out runs, and says what to use instead', async () => {
    const result = await runCli(['--db', db, 'propose', '--split', 'held-in,held-out']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('error: The held-out split is never shown to a proposer');
    expect(result.stderr).toContain('Use held-in');
  });
});
