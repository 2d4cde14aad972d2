import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLog, type ValidationDecided } from '../../core/index.js';
import { ensureDefaultVersion } from '../../harness/index.js';
import { listProposals, RuleProposer, recordProposals, recordRejectedProposals } from '../../proposer/index.js';
import { briefOf, cardsByMechanism } from './cards.js';

const folder = mkdtempSync(join(tmpdir(), 'selfharness-proposals-'));
let log: EventLog;

beforeAll(async () => {
  log = await EventLog.open(join(folder, 'proposals.duckdb'));
});

afterAll(() => {
  log.close();
  rmSync(folder, { recursive: true, force: true });
});

function decision(
  proposalId: string,
  stage: ValidationDecided['data']['stage'],
  outcome: ValidationDecided['data']['decision'],
  reasons: string[],
): ValidationDecided {
  return {
    id: `validation:${proposalId}:${stage}`,
    runId: `proposal:${proposalId}`,
    type: 'validation-decide',
    time: '2026-02-01T00:00:00Z',
    data: { proposalId, stage, decision: outcome, reasons, metrics: { deltaHeldIn: 0.05 } },
  };
}

describe('proposals as events', () => {
  it('records each candidate once, however often it is proposed, and reads it back with its latest decision', async () => {
    const base = await ensureDefaultVersion(log);
    const cards = cardsByMechanism();
    const brief = briefOf([cards['repeated-failed-command']!, cards['tool-call-loop']!]);
    const { candidates } = await new RuleProposer().propose(brief, { count: 2 });
    expect(candidates).toHaveLength(2);

    const options = { baseVersionId: base.versionId, proposer: 'rules', jobId: 'job-1', iteration: 1 };
    const first = await recordProposals(log, candidates, options);
    expect(first).toMatchObject({ appended: 2, duplicates: 0 });
    // The same edits again, even from another job, add nothing.
    const again = await recordProposals(log, candidates, { ...options, jobId: 'job-2', iteration: 4 });
    expect(again).toMatchObject({ appended: 0, duplicates: 2 });

    const [guard, loop] = candidates;
    await log.appendEvents([
      decision(guard!.proposalId, 'replay', 'accepted', ['fired on 2 of 2 target runs']),
      decision(guard!.proposalId, 'gate', 'rejected', ['held-out pass rate fell']),
      decision(loop!.proposalId, 'replay', 'accepted', ['fired on 2 of 2 target runs']),
    ]);

    const records = await listProposals(log);
    expect(records).toHaveLength(2);
    expect(records[0]).toMatchObject({
      proposalId: guard!.proposalId,
      baseVersionId: base.versionId,
      jobId: 'job-1',
      iteration: 1,
      proposer: 'rules',
      clusterId: 'c-repeated-failed-command',
      mechanism: 'repeated-failed-command',
      surface: '/middleware',
      patch: [{ op: 'add', path: '/middleware/-', value: { name: 'failed-command-guard', maxFailures: 2 } }],
      risk: 'low',
      status: 'rejected',
      decision: { stage: 'gate', decision: 'rejected', reasons: ['held-out pass rate fell'] },
      resultVersionId: guard!.resultVersionId,
    });
    expect(records[0]!.expectedEffect).toBe(guard!.expectedEffect);
    expect(records[0]!.createdAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(records[1]).toMatchObject({ proposalId: loop!.proposalId, status: 'screened-in' });
  });

  it('keeps rejected proposals in ingest_rejects with format proposal, once each', async () => {
    const rejected = [{ reason: 'malformed patch: operation 0: op must be one of …', raw: '{"patch":[{"op":"x"}]}' }];
    const options = { baseVersionId: 'abc123abc123', proposer: 'llm:scripted-model' };
    expect(await recordRejectedProposals(log, rejected, options)).toBe(1);
    expect(await recordRejectedProposals(log, rejected, options)).toBe(0);
    const rows = await log.query<{ format: string; file: string; position: string; reason: string; raw: string }>(
      "SELECT format, file, position, reason, raw FROM ingest_rejects WHERE format = 'proposal'",
    );
    expect(rows).toEqual([
      {
        format: 'proposal',
        file: 'llm:scripted-model',
        position: 'base abc123abc123, candidate 1',
        reason: rejected[0]!.reason,
        raw: rejected[0]!.raw,
      },
    ]);
  });
});
