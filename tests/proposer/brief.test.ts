import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mineWeaknesses } from '../../analytics/mine.js';
import { EventLog, type TraceEvent } from '../../core/index.js';
import { ensureDefaultVersion, type HarnessVersion } from '../../harness/index.js';
import { buildBrief, checkCandidate, RuleProposer, recordProposals, renderBriefPrompt } from '../../proposer/index.js';
import { scriptedRun, weaknessEvents } from '../support/mining-log.js';

const folder = mkdtempSync(join(tmpdir(), 'selfharness-brief-'));
let log: EventLog;
let base: HarnessVersion;

const secretFailure = { command: 'secretctl deploy --now', output: 'SECRET-OUTPUT-XYZ: refused', exitCode: 3 };

/** Held-out and sealed runs that fail the same way as held-in ones, so mining over all splits puts them together. */
function hiddenEvents(): TraceEvent[] {
  return [
    ...[1, 2, 3].flatMap((index) =>
      scriptedRun({
        runId: `secret-run-${index}`,
        task: `hidden-task-${index}`,
        split: index === 3 ? 'sealed' : 'held-out',
        outcome: 'failed',
        calls: [secretFailure, secretFailure, secretFailure, secretFailure],
      }),
    ),
    ...scriptedRun({
      runId: 'secret-pass-1',
      task: 'hidden-task-1',
      split: 'held-out',
      outcome: 'passed',
      calls: [{ command: 'secretctl deploy', output: 'SECRET-OUTPUT-XYZ ok', exitCode: 0 }],
    }),
  ];
}

beforeAll(async () => {
  log = await EventLog.open(join(folder, 'brief.duckdb'));
  await log.appendEvents([...weaknessEvents(), ...hiddenEvents()]);
  base = await ensureDefaultVersion(log);
});

afterAll(() => {
  log.close();
  rmSync(folder, { recursive: true, force: true });
});

describe('buildBrief', () => {
  it('never shows a held-out or sealed run: ids, tasks and text are left out of clusters mined over all splits', async () => {
    const mined = await mineWeaknesses(log, { mode: 'signature' });
    const repeated = mined.clusters.find((card) => card.mechanisms[0]?.mechanism === 'repeated-failed-command')!;
    // The mined card mixes the splits: the filter has real work to do.
    expect(repeated.runIds).toContain('secret-run-1');
    expect(JSON.stringify(repeated)).toContain('SECRET-OUTPUT-XYZ');

    const brief = await buildBrief(log, { baseVersion: base, clusters: mined.clusters });
    const text = JSON.stringify(brief);
    for (const secret of ['secret-run', 'secret-pass', 'hidden-task', 'SECRET-OUTPUT-XYZ', 'secretctl'])
      expect(text).not.toContain(secret);
    const prompt = renderBriefPrompt(brief, 3);
    expect(`${prompt.system}\n${prompt.user}`).not.toContain('secret');

    const card = brief.clusters.find((entry) => entry.clusterId === repeated.clusterId)!;
    expect(card).toMatchObject({
      runIds: ['make-1', 'make-2', 'make-3', 'make-4'],
      runCount: 4,
      taskCount: 4,
      tasks: ['t1', 't2', 't3', 't4'],
      failureCount: 4,
      mechanisms: [{ mechanism: 'repeated-failed-command', failures: 4 }],
      label: 'Repeated failed command',
    });
    expect(card.evidence.every((entry) => entry.runId.startsWith('make-'))).toBe(true);
    expect(card.preserve.passingRuns.map((run) => run.runId)).toEqual(['pass-1', 'pass-2']);
  });

  it('keeps a card whose runs are all shown as mined, and ranks the brief from 1', async () => {
    const mined = await mineWeaknesses(log, { mode: 'signature', split: 'held-in', store: false });
    const brief = await buildBrief(log, { baseVersion: base, clusters: mined.clusters, top: 1 });
    expect(brief.clusters).toEqual([mined.clusters[0]]);
    expect(brief).toMatchObject({ baseVersionId: base.versionId, splitsShown: ['held-in'], earlierProposals: [] });
    expect(brief.surfaces.map((surface) => surface.path)).toContain('/middleware');
    expect(brief.spec).toEqual(base.spec);
  });

  it('drops a cluster that has no shown run', async () => {
    const mined = await mineWeaknesses(log, { mode: 'signature', split: 'held-out', store: false });
    // Two held-out runs over two tasks make clusters of their own when mined on that split alone.
    expect(mined.clusters.length).toBeGreaterThan(0);
    const brief = await buildBrief(log, { baseVersion: base, clusters: mined.clusters });
    expect(brief.clusters).toEqual([]);
  });

  it('refuses to show the held-out or sealed split', async () => {
    await expect(buildBrief(log, { baseVersion: base, clusters: [], splitsShown: ['held-out'] })).rejects.toThrow(
      /held-out split is never shown to a proposer/,
    );
    await expect(
      buildBrief(log, { baseVersion: base, clusters: [], splitsShown: ['held-in', 'sealed'] }),
    ).rejects.toThrow(/sealed split/);
  });

  it('lists earlier proposals with their outcome, removing hidden runs and tasks from the reasons', async () => {
    const mined = await mineWeaknesses(log, { mode: 'signature', split: 'held-in', store: false });
    const first = await buildBrief(log, { baseVersion: base, clusters: mined.clusters });
    const { candidates } = await new RuleProposer().propose(first, { count: 1 });
    await recordProposals(log, candidates, { baseVersionId: base.versionId, proposer: 'rules' });
    const proposalId = candidates[0]!.proposalId;
    await log.appendEvents([
      {
        id: `validation:${proposalId}:gate`,
        runId: `proposal:${proposalId}`,
        type: 'validation-decide',
        data: {
          proposalId,
          stage: 'gate',
          decision: 'rejected',
          reasons: ['hidden-task-2 regressed (run secret-run-2); t1 unchanged'],
          metrics: { deltaHeldIn: 0 },
        },
      },
    ]);
    const brief = await buildBrief(log, { baseVersion: base, clusters: mined.clusters });
    expect(brief.earlierProposals).toEqual([
      expect.objectContaining({
        proposalId,
        status: 'rejected',
        reasons: ['[hidden] regressed (run [hidden]); t1 unchanged'],
        resultVersionId: candidates[0]!.resultVersionId,
      }),
    ]);
    // The rejected edit is not proposed again.
    const repeat = checkCandidate(brief, { ...candidates[0]!, patch: [...candidates[0]!.patch] });
    expect(repeat.ok ? '' : repeat.rejected.reason).toContain(`repeats proposal ${proposalId}`);
    const next = await new RuleProposer().propose(brief, { count: 1 });
    expect(next.candidates[0]!.proposalId).not.toBe(proposalId);
  });
});
