import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mineWeaknesses } from '../../analytics/mine.js';
import { EventLog } from '../../core/index.js';
import { defaultVersionId } from '../../harness/index.js';
import { evaluateGate, gateDecisionInput, recordDecision, type TrialPair } from '../../validator/index.js';
import { runCli } from '../support/cli.js';
import { type HandRun, handRunEvents } from './runs.js';

const folder = mkdtempSync(join(tmpdir(), 'selfharness-validator-cli-'));
const db = join(folder, 'log.duckdb');
const proposalId = 'abc123loop00';

const loopRun = (index: number, task: string): HandRun => ({
  runId: `loop-${index}`,
  task,
  outcome: 'failed',
  calls: [
    { command: 'ls', output: 'input.txt' },
    ...Array.from({ length: 5 }, () => ({ command: 'cat input.txt | wc -w', output: '0' })),
  ],
});

beforeAll(async () => {
  const log = await EventLog.open(db);
  await log.appendEvents(
    [
      loopRun(1, 'task-a'),
      loopRun(2, 'task-b'),
      { runId: 'pass-1', task: 'task-a', outcome: 'passed', calls: [{ command: 'wc -w input.txt' }] } satisfies HandRun,
    ].flatMap(handRunEvents),
  );
  const mining = await mineWeaknesses(log, { mode: 'signature' });
  const cluster = mining.clusters.find((card) => card.mechanisms.some((entry) => entry.mechanism === 'tool-call-loop'));
  await log.appendEvents([
    {
      id: `proposal:${proposalId}`,
      runId: `proposal:${proposalId}`,
      type: 'proposal-create',
      data: {
        proposalId,
        baseVersionId: defaultVersionId(),
        proposer: 'hand',
        clusterId: cluster!.clusterId,
        mechanism: 'tool-call-loop',
        surface: '/middleware',
        patch: [{ op: 'add', path: '/middleware/-', value: { name: 'loop-breaker', maxRepeats: 3 } }],
        expectedEffect: 'loops are broken',
        preserve: 'passing runs',
        risk: 'low',
      },
    },
  ]);
  log.close();
});

afterAll(() => rmSync(folder, { recursive: true, force: true }));

describe('selfharness replay, validations, promote, harness-head, rollback', () => {
  it('replays a proposal, records the decision and lists it', async () => {
    const replay = await runCli(['--db', db, 'replay', proposalId.slice(0, 6)]);
    expect(replay.code, replay.stderr).toBe(0);
    expect(replay.stdout).toContain(`Proposal ${proposalId}: kept for trials`);
    expect(replay.stdout).toContain('Fires on 2 of 2 target failures (100%)');
    expect(replay.stdout).toMatch(/loop-1\s+4\s+2\s+-2\s+block/);
    const listed = await runCli(['--db', db, '--json', 'validations']);
    expect(listed.code, listed.stderr).toBe(0);
    const decisions = JSON.parse(listed.stdout) as { proposalId: string; stage: string; decision: string }[];
    expect(decisions.map((decision) => [decision.proposalId, decision.stage, decision.decision])).toEqual([
      [proposalId, 'replay', 'accepted'],
    ]);
  });

  it('promotes the accepted edit, shows the head, and rolls back', async () => {
    const log = await EventLog.open(db);
    const pairs: TrialPair[] = Array.from({ length: 8 }, (_, index) => ({
      task: `task-${index}`,
      attempt: 1,
      split: index < 4 ? 'held-in' : 'held-out',
      base: 'failed',
      candidate: index % 2 === 0 ? 'passed' : 'failed',
    }));
    await recordDecision(log, gateDecisionInput(proposalId, evaluateGate(pairs, { mode: 'paper' })));
    log.close();

    const promoted = await runCli(['--db', db, 'promote']);
    expect(promoted.code, promoted.stderr).toBe(0);
    const versionId = /Promoted harness ([0-9a-f]{12}) \(parent ([0-9a-f]{12})\)/.exec(promoted.stdout);
    expect(versionId?.[2]).toBe(defaultVersionId());
    expect(promoted.stdout).toContain(`- ${proposalId} (cluster `);

    const head = await runCli(['--db', db, 'harness-head']);
    expect(head.code, head.stderr).toBe(0);
    expect(head.stdout.split('\n')[0]).toMatch(new RegExp(`^${versionId![1]} \\(promotion at `));

    const rollback = await runCli(['--db', db, 'rollback', 'default', '--reason', 'regressed']);
    expect(rollback.code, rollback.stderr).toBe(0);
    expect(rollback.stdout.trim()).toBe(`Rolled back from ${versionId![1]} to ${defaultVersionId()}.`);
  });

  it('names an unknown version', async () => {
    const unknownVersion = await runCli(['--db', db, 'rollback', 'ffffff']);
    expect(unknownVersion.code).toBe(2);
    expect(unknownVersion.stderr).toContain(
      'Unknown harness version ffffff: list versions with `selfharness harness log`',
    );
  });
});
