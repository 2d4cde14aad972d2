import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLog, type ProposalCreated } from '../../core/index.js';
import { defaultHarnessSpec, defaultVersionId, listVersions, registerVersion } from '../../harness/index.js';
import {
  type AcceptedEdit,
  acceptedEdits,
  currentHarness,
  evaluateGate,
  gateDecisionInput,
  listPromotions,
  listValidations,
  planMerge,
  promoteAccepted,
  recordDecision,
  rollbackHarness,
  type TrialPair,
  touchedPaths,
} from '../../validator/index.js';

const loopBreaker: AcceptedEdit = {
  proposalId: 'p-loop',
  clusterId: 'c-loop',
  mechanism: 'tool-call-loop',
  surface: '/middleware',
  patch: [{ op: 'add', path: '/middleware/-', value: { name: 'loop-breaker', maxRepeats: 3 } }],
  score: 12,
  deltaHeldIn: 7,
  deltaHeldOut: 5,
};
const recovery: AcceptedEdit = {
  proposalId: 'p-recovery',
  clusterId: 'c-deps',
  mechanism: 'missing-dependency',
  surface: '/instructions/recovery',
  patch: [{ op: 'replace', path: '/instructions/recovery', value: 'When a program is missing, use python3 instead.' }],
  score: 4,
  deltaHeldIn: 4,
  deltaHeldOut: 0,
};

describe('merging accepted edits', () => {
  it('merges two edits that touch disjoint paths', () => {
    const plan = planMerge(defaultHarnessSpec, [recovery, loopBreaker]);
    expect(plan.merged.map((edit) => edit.proposalId)).toEqual(['p-loop', 'p-recovery']);
    expect(plan.conflicts).toEqual([]);
    expect(plan.spec.middleware).toEqual([{ name: 'loop-breaker', maxRepeats: 3, action: 'block' }]);
    expect(plan.spec.instructions.recovery).toBe('When a program is missing, use python3 instead.');
  });

  it('keeps the better-scoring of two edits on the same path and reports the other', () => {
    const other: AcceptedEdit = {
      ...recovery,
      proposalId: 'p-recovery-2',
      patch: [{ op: 'replace', path: '/instructions/recovery', value: 'Read the error first.' }],
      score: 9,
    };
    const plan = planMerge(defaultHarnessSpec, [recovery, other]);
    expect(plan.merged.map((edit) => edit.proposalId)).toEqual(['p-recovery-2']);
    expect(plan.conflicts).toEqual([
      {
        proposalId: 'p-recovery',
        keptProposalId: 'p-recovery-2',
        reason:
          'Conflicts with p-recovery-2 on /instructions/recovery; that edit scored higher (+9.0 vs +4.0) and was kept.',
      },
    ]);
    expect(plan.spec.instructions.recovery).toBe('Read the error first.');
  });

  it('reports an edit that no longer applies on top of the kept ones', () => {
    const secondLoopBreaker: AcceptedEdit = {
      ...loopBreaker,
      proposalId: 'p-loop-2',
      patch: [{ op: 'add', path: '/middleware/-', value: { name: 'loop-breaker', maxRepeats: 5 } }],
      score: 1,
    };
    const plan = planMerge(defaultHarnessSpec, [loopBreaker, secondLoopBreaker]);
    expect(plan.merged.map((edit) => edit.proposalId)).toEqual(['p-loop']);
    expect(plan.conflicts[0]?.proposalId).toBe('p-loop-2');
    expect(plan.conflicts[0]?.reason).toMatch(
      /^Does not apply on top of the edits kept \(p-loop\): .*loop-breaker is listed twice/,
    );
  });

  it('treats appends to one list as disjoint and index-shifting edits as touching the whole list', () => {
    const spec = { middleware: [{ name: 'a' }, { name: 'b' }] };
    expect(touchedPaths(spec, [{ op: 'add', path: '/middleware/-' }])).toEqual([['middleware', '-']]);
    expect(touchedPaths(spec, [{ op: 'remove', path: '/middleware/0' }])).toEqual([['middleware']]);
    expect(touchedPaths(spec, [{ op: 'replace', path: '/middleware/1' }])).toEqual([['middleware', '1']]);
    expect(touchedPaths(spec, [{ op: 'test', path: '/middleware' }])).toEqual([]);
  });
});

describe('promotion and rollback in the log', () => {
  const folder = mkdtempSync(join(tmpdir(), 'selfharness-promote-'));
  let log: EventLog;

  beforeAll(async () => {
    log = await EventLog.open(join(folder, 'log.duckdb'));
  });
  afterAll(() => {
    log?.close();
    rmSync(folder, { recursive: true, force: true });
  });

  it('starts from the built-in default harness', async () => {
    const head = await currentHarness(log);
    expect(head.version.versionId).toBe(defaultVersionId());
    expect(head.promotion).toBeUndefined();
  });

  it('reads the edits the gate accepted from the log, scored by their Δs', async () => {
    const proposal = (edit: AcceptedEdit): ProposalCreated => ({
      id: `proposal:${edit.proposalId}`,
      runId: `proposal:${edit.proposalId}`,
      type: 'proposal-create',
      data: {
        proposalId: edit.proposalId,
        baseVersionId: defaultVersionId(),
        proposer: 'hand',
        clusterId: edit.clusterId!,
        mechanism: edit.mechanism!,
        surface: edit.surface!,
        patch: [...edit.patch],
        expectedEffect: 'fewer failures',
        preserve: 'passing runs',
        risk: 'low',
      },
    });
    await log.appendEvents([proposal(loopBreaker), proposal(recovery)]);
    const improving: TrialPair[] = Array.from({ length: 20 }, (_, index) => ({
      task: `task-${index}`,
      attempt: 1,
      split: index < 12 ? 'held-in' : 'held-out',
      base: index % 2 === 0 ? 'passed' : 'failed',
      candidate: index % 2 === 0 || index < 16 ? 'passed' : 'failed',
    }));
    const gate = evaluateGate(improving, { mode: 'paper' });
    expect(gate.decision).toBe('accepted');
    await recordDecision(log, gateDecisionInput('p-loop', gate));
    await recordDecision(log, gateDecisionInput('p-recovery', evaluateGate(improving.slice(0, 1), { mode: 'paper' })));
    const edits = await acceptedEdits(log, defaultVersionId());
    expect(edits.map((edit) => [edit.proposalId, edit.deltaHeldIn, edit.deltaHeldOut])).toEqual([
      ['p-loop', gate.metrics.heldIn.deltaPoints, gate.metrics.heldOut.deltaPoints],
    ]);
  });

  it('registers the merged version with its parent and changelog, and makes it current, once', async () => {
    const result = await promoteAccepted(log, {
      baseVersionId: 'default',
      edits: [loopBreaker, recovery],
      time: '2026-01-05T00:00:00Z',
    });
    expect(result.appended).toBe(true);
    const version = result.version!;
    expect(version.parentId).toBe(defaultVersionId());
    expect(version.description).toBe(
      [
        `From ${defaultVersionId()}: 2 edits merged.`,
        '- p-loop (cluster c-loop; tool-call-loop; /middleware): Δheld-in +7.0 points, Δheld-out +5.0 points',
        '- p-recovery (cluster c-deps; missing-dependency; /instructions/recovery): Δheld-in +4.0 points, Δheld-out +0.0 points',
      ].join('\n'),
    );
    const head = await currentHarness(log);
    expect(head.version.versionId).toBe(version.versionId);
    expect(head.promotion).toMatchObject({
      reason: 'promotion',
      previousVersionId: defaultVersionId(),
      proposalIds: ['p-loop', 'p-recovery'],
    });
    const merges = (await listValidations(log)).filter((decision) => decision.stage === 'merge');
    expect(merges.map((decision) => [decision.proposalId, decision.decision])).toEqual([
      ['p-loop', 'accepted'],
      ['p-recovery', 'accepted'],
    ]);
    expect(await acceptedEdits(log, defaultVersionId())).toEqual([]);

    const events = await log.countEvents();
    const again = await promoteAccepted(log, {
      baseVersionId: 'default',
      edits: [loopBreaker, recovery],
      time: '2026-01-05T00:00:00Z',
    });
    expect(again.appended).toBe(false);
    expect(again.version?.versionId).toBe(version.versionId);
    expect(await log.countEvents()).toBe(events);
    expect(await listPromotions(log)).toHaveLength(1);
  });

  it('refuses edits validated against a harness that is no longer current', async () => {
    await expect(
      promoteAccepted(log, {
        baseVersionId: 'default',
        edits: [
          { ...recovery, proposalId: 'p-late', patch: [{ op: 'replace', path: '/budgets/maxTurns', value: 80 }] },
        ],
      }),
    ).rejects.toThrow(/were validated against harness [0-9a-f]{12}, but the current harness is [0-9a-f]{12}/);
  });

  it('rolls back to an earlier harness with a rollback event, once', async () => {
    const promoted = (await currentHarness(log)).version.versionId;
    const result = await rollbackHarness(log, 'default', {
      reason: 'held-out regression',
      time: '2026-01-06T00:00:00Z',
    });
    expect(result).toMatchObject({ appended: true, previousVersionId: promoted });
    const head = await currentHarness(log);
    expect(head.version.versionId).toBe(defaultVersionId());
    expect(head.promotion).toMatchObject({
      reason: 'rollback',
      previousVersionId: promoted,
      changelog: `Rolled back from ${promoted} to ${defaultVersionId()}: held-out regression`,
    });
    expect((await rollbackHarness(log, 'default')).appended).toBe(false);
    expect((await rollbackHarness(log, promoted.slice(0, 6))).appended).toBe(true);
    expect((await currentHarness(log)).version.versionId).toBe(promoted);
    expect((await listPromotions(log)).map((promotion) => promotion.reason)).toEqual([
      'promotion',
      'rollback',
      'rollback',
    ]);
  });

  it('names unknown versions and versions that were never current', async () => {
    await expect(rollbackHarness(log, 'abcdef123456')).rejects.toThrow(
      'Unknown harness version abcdef123456: list versions with `selfharness harness log`',
    );
    const { version } = await registerVersion(log, {
      ...defaultHarnessSpec,
      middleware: [{ name: 'persistent-shell' }],
    });
    await expect(rollbackHarness(log, version.versionId)).rejects.toThrow(
      `Harness version ${version.versionId} was never the current harness`,
    );
    expect((await listVersions(log)).length).toBe(3);
  });
});
