import { installAnalytics, type MiningResult, mineWeaknesses } from '../../analytics/index.js';
import type { EventLog, ProposalCreated } from '../../core/index.js';
import { defaultVersionId, ensureDefaultVersion, type HarnessVersion } from '../../harness/index.js';
import {
  type AcceptedEdit,
  evaluateGate,
  gateDecisionInput,
  promoteAccepted,
  recordDecision,
  type TrialPair,
} from '../../validator/index.js';
import { scriptedRun, weaknessEvents } from './mining-log.js';

/** An accepted edit adding the loop breaker, and one the gate turns down; both on the default harness. */
export const LOOP_BREAKER: AcceptedEdit = {
  proposalId: 'p-loop',
  clusterId: 'c-make',
  mechanism: 'repeated-failed-command',
  surface: '/middleware',
  patch: [{ op: 'add', path: '/middleware/-', value: { name: 'failed-command-guard', maxFailures: 2 } }],
  score: 12,
  deltaHeldIn: 7,
  deltaHeldOut: 5,
};
export const RECOVERY: AcceptedEdit = {
  proposalId: 'p-recovery',
  clusterId: 'c-numpy',
  mechanism: 'missing-dependency',
  surface: '/instructions/recovery',
  patch: [{ op: 'replace', path: '/instructions/recovery', value: 'When a Python module is missing, install it.' }],
  score: 4,
};
const REJECTED: Omit<AcceptedEdit, 'score'> = {
  proposalId: 'p-budget',
  mechanism: 'budget-exhaustion',
  surface: '/budgets/maxTurns',
  patch: [{ op: 'replace', path: '/budgets/maxTurns', value: 80 }],
};

function proposalEvent(edit: Omit<AcceptedEdit, 'score'>): ProposalCreated {
  return {
    id: `proposal:${edit.proposalId}`,
    runId: `proposal:${edit.proposalId}`,
    type: 'proposal-create',
    time: '2026-01-04T00:00:00Z',
    data: {
      proposalId: edit.proposalId,
      baseVersionId: defaultVersionId(),
      proposer: 'hand',
      ...(edit.clusterId ? { clusterId: edit.clusterId } : {}),
      ...(edit.mechanism ? { mechanism: edit.mechanism } : {}),
      surface: edit.surface ?? '/',
      patch: [...edit.patch],
      expectedEffect: 'fewer failures of this kind',
      preserve: 'the passing runs on the same tasks',
      risk: 'low',
    },
  };
}

/** Twenty paired trials in which the candidate fixes four failing tasks and breaks none. */
function improvingPairs(): TrialPair[] {
  return Array.from({ length: 20 }, (_, index) => ({
    task: `task-${index}`,
    attempt: 1,
    split: index < 12 ? 'held-in' : 'held-out',
    base: index % 2 === 0 ? 'passed' : 'failed',
    candidate: index % 2 === 0 || index < 16 ? 'passed' : 'failed',
  }));
}

export interface DashboardLog {
  mining: MiningResult;
  defaultVersion: HarnessVersion;
  promoted: HarnessVersion;
}

/** Runs deep enough that the run viewer must scroll to their cited step: 30 listings, then numpy is missing. */
export const DEEP_RUNS = ['deep-1', 'deep-2'];
export const DEEP_STEP = 31;

function deepRunEvents() {
  return DEEP_RUNS.flatMap((runId, index) =>
    scriptedRun({
      runId,
      task: `t${7 + index}`,
      model: 'model-b',
      outcome: 'failed',
      calls: [
        ...Array.from({ length: DEEP_STEP - 1 }, (_, call) => ({
          command: `ls src/part-${call}`,
          output: `part-${call}.c`,
          exitCode: 0,
        })),
        {
          command: 'python3 solve.py',
          output: "Traceback (most recent call last):\nModuleNotFoundError: No module named 'numpy'",
          exitCode: 1,
        },
      ],
    }),
  );
}

/**
 * A log with everything the dashboard shows: failed runs of two models with known mechanisms (repeated `make test`,
 * a missing numpy, also cited at step 31 of two long runs), mined in signature mode; the default harness and a version promoted from two proposals the gate
 * accepted (with their gate and merge decisions), and a third proposal the gate rejected.
 */
export async function buildDashboardLog(log: EventLog): Promise<DashboardLog> {
  await installAnalytics(log.database);
  await log.appendEvents([...weaknessEvents(), ...deepRunEvents()]);
  const mining = await mineWeaknesses(log, { mode: 'signature' });
  const defaultVersion = await ensureDefaultVersion(log);
  await log.appendEvents([proposalEvent(LOOP_BREAKER), proposalEvent(RECOVERY), proposalEvent(REJECTED)]);
  const time = '2026-01-05T00:00:00Z';
  await recordDecision(
    log,
    gateDecisionInput(LOOP_BREAKER.proposalId, evaluateGate(improvingPairs(), { mode: 'paper' })),
    time,
  );
  await recordDecision(
    log,
    gateDecisionInput(RECOVERY.proposalId, evaluateGate(improvingPairs(), { mode: 'paper' })),
    time,
  );
  const worsening = improvingPairs().map((pair) => ({ ...pair, base: pair.candidate, candidate: pair.base }));
  await recordDecision(log, gateDecisionInput(REJECTED.proposalId, evaluateGate(worsening, { mode: 'paper' })), time);
  const promotion = await promoteAccepted(log, {
    baseVersionId: 'default',
    edits: [LOOP_BREAKER, RECOVERY],
    time: '2026-01-06T00:00:00Z',
  });
  if (!promotion.version) throw new Error(`the dashboard log's promotion merged nothing: ${promotion.changelog}`);
  return { mining, defaultVersion, promoted: promotion.version };
}
