import { createHash } from 'node:crypto';
import type { EventLog, ValidationDecided } from '../core/index.js';
import { canonicalJson } from '../harness/index.js';

/**
 * Every verdict of the validator (screened out by replay, accepted or rejected by the gate, merged or left out at
 * promotion) is a `validation-decide` event in the proposal's stream `proposal:<proposalId>`, with its reasons and
 * numbers. The id is derived from the proposal, the stage and the verdict with its numbers, so deciding again on the
 * same evidence adds nothing, while new evidence (a grown log, new trials) adds a new decision.
 */

export type ValidationStage = ValidationDecided['data']['stage'];
export type ValidationDecision = ValidationDecided['data']['decision'];

export interface DecisionInput {
  readonly proposalId: string;
  readonly stage: ValidationStage;
  readonly decision: ValidationDecision;
  readonly gate?: string;
  readonly reasons: readonly string[];
  readonly metrics: Record<string, unknown>;
}

/** The event recording a decision; `time` is injected so the event is a pure function of its input. */
export function decisionEvent(input: DecisionInput, time: string): ValidationDecided {
  const metrics = JSON.parse(JSON.stringify(input.metrics)) as Record<string, unknown>;
  const digest = createHash('sha256')
    .update(
      canonicalJson({
        decision: input.decision,
        gate: input.gate ?? null,
        reasons: input.reasons,
        metrics,
      }),
    )
    .digest('hex')
    .slice(0, 12);
  return {
    id: `validation:${input.proposalId}:${input.stage}:${digest}`,
    runId: `proposal:${input.proposalId}`,
    type: 'validation-decide',
    time,
    source: { format: 'selfharness' },
    data: {
      proposalId: input.proposalId,
      stage: input.stage,
      decision: input.decision,
      ...(input.gate !== undefined ? { gate: input.gate } : {}),
      reasons: [...input.reasons],
      metrics,
    },
  };
}

/** Appends a decision; `appended` is false when the same decision on the same numbers was already recorded. */
export async function recordDecision(
  log: EventLog,
  input: DecisionInput,
  time = new Date().toISOString(),
): Promise<{ event: ValidationDecided; appended: boolean }> {
  const event = decisionEvent(input, time);
  const result = await log.appendEvents([event]);
  return { event, appended: result.appended > 0 };
}

/** A decision as read back from the log. */
export interface ValidationRecord {
  readonly seq: number;
  readonly time?: string;
  readonly proposalId: string;
  readonly stage: ValidationStage;
  readonly decision: ValidationDecision;
  readonly gate?: string;
  readonly reasons: readonly string[];
  readonly metrics: Record<string, unknown>;
}

const LIST_DECISIONS = `
SELECT seq, coalesce(time, recorded_at) AS time, CAST(data AS VARCHAR) AS data
FROM events
WHERE type = 'validation-decide' AND ($1::VARCHAR IS NULL OR (data->>'proposalId') = $1)
ORDER BY seq`;

/** Every decision in the log (or those about one proposal), oldest first. */
export async function listValidations(log: EventLog, proposalId?: string): Promise<ValidationRecord[]> {
  const rows = await log.query<{ seq: bigint; time: unknown; data: string }>(LIST_DECISIONS, [proposalId ?? null]);
  return rows.map((row) => {
    const data = JSON.parse(row.data) as ValidationDecided['data'];
    return {
      seq: Number(row.seq),
      ...(row.time instanceof Date ? { time: row.time.toISOString() } : {}),
      proposalId: data.proposalId,
      stage: data.stage,
      decision: data.decision,
      ...(data.gate !== undefined ? { gate: data.gate } : {}),
      reasons: data.reasons,
      metrics: data.metrics,
    };
  });
}
