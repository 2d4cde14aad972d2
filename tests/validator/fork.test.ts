import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLog } from '../../core/index.js';
import { createAgent, defaultHarnessSpec, registerVersion } from '../../harness/index.js';
import { findBubblewrap, loadSuite, openSandbox, runTrials, type Sandbox } from '../../tasks/index.js';
import { forkRun, loadLoggedRuns } from '../../validator/index.js';
import { errorReply, startOpenAiServer } from '../support/openai-server.js';

describe.skipIf(findBubblewrap() === undefined)('forking a logged run', () => {
  let folder: string;
  let log: EventLog;
  let sandbox: Sandbox;
  let originalRunId: string;
  let candidateVersionId: string;

  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'selfharness-fork-'));
    log = await EventLog.open(join(folder, 'log.duckdb'));
    sandbox = await openSandbox();
    const task = loadSuite().tasks.find((entry) => entry.id === 'make-hello-subdir')!;
    const agent = await createAgent({ model: 'sim:lost-state', log });
    const batch = await runTrials({ log, tasks: [task], agent, sandbox, seed: 4 });
    originalRunId = batch.results[0]!.runId;
    candidateVersionId = (
      await registerVersion(log, { ...defaultHarnessSpec, middleware: [{ name: 'persistent-shell' }] })
    ).version.versionId;
  }, 60_000);
  afterAll(() => {
    log?.close();
    rmSync(folder, { recursive: true, force: true });
  });

  it('re-executes the logged calls before the step in a fresh workspace, continues live with the candidate, and links the new run to the original', async () => {
    const [original] = await loadLoggedRuns(log, { runIds: [originalRunId] });
    const turns = original!.turns;
    expect(turns.length).toBeGreaterThanOrEqual(3);
    const forkStep = turns[2]!.step;
    const replayedCommands = turns
      .slice(0, 2)
      .flatMap((turn) => turn.calls.map((call) => [call.tool, JSON.stringify(call.arguments)]));

    const result = await forkRun(log, {
      runId: originalRunId,
      step: forkStep,
      harness: candidateVersionId,
      sandbox,
      metadata: { purpose: 'test' },
    });
    expect(result).toMatchObject({
      parentRunId: originalRunId,
      step: forkStep,
      harnessVersion: candidateVersionId,
      model: 'sim:lost-state',
      replayedTurns: 2,
      replayedCalls: replayedCommands.length,
    });
    expect(['passed', 'failed']).toContain(result.outcome);

    const [run] = await log.query<{
      parent_run_id: string;
      relation: string;
      outcome: string;
      harness_version: string;
      task: string;
    }>('SELECT parent_run_id, relation, outcome, harness_version, task FROM runs WHERE run_id = $1', [result.runId]);
    expect(run).toEqual({
      parent_run_id: originalRunId,
      relation: 'continuation',
      outcome: result.outcome,
      harness_version: candidateVersionId,
      task: 'make-hello-subdir',
    });
    const [start] = await log.query<{ fork: string; purpose: string }>(
      "SELECT CAST(data->'metadata'->'fork' AS VARCHAR) AS fork, data->'metadata'->>'purpose' AS purpose FROM events WHERE run_id = $1 AND type = 'run-start'",
      [result.runId],
    );
    expect(JSON.parse(start!.fork)).toEqual({
      runId: originalRunId,
      step: forkStep,
      replayedTurns: 2,
      replayedCalls: replayedCommands.length,
    });
    expect(start!.purpose).toBe('test');

    const [fork] = await loadLoggedRuns(log, { runIds: [result.runId] });
    const forkCalls = fork!.turns.flatMap((turn) =>
      turn.calls.map((call) => [call.tool, JSON.stringify(call.arguments)]),
    );
    // The logged calls ran again, in order, in the new workspace; then the live model went on.
    expect(forkCalls.slice(0, replayedCommands.length)).toEqual(replayedCommands);
    expect(forkCalls.length).toBeGreaterThan(replayedCommands.length);
    const firstOutputs = fork!.turns[0]!.calls.map((call) => call.output);
    expect(firstOutputs.join('\n')).toContain('/workspace');
    // The replayed steps are marked as copied context; the live ones are not.
    const copied = await log.query<{ copied: boolean | null; role: string }>(
      "SELECT CAST(data->>'copiedContext' AS BOOLEAN) AS copied, data->>'role' AS role FROM events WHERE run_id = $1 AND type = 'step-create' ORDER BY seq",
      [result.runId],
    );
    const agentSteps = copied.filter((row) => row.role === 'agent');
    expect(agentSteps.slice(0, 2).map((row) => row.copied)).toEqual([true, true]);
    expect(agentSteps.slice(2).every((row) => row.copied !== true)).toBe(true);
    const ends = await log.query<{ n: bigint }>(
      "SELECT count(*) AS n FROM events WHERE run_id = $1 AND type IN ('run-verify', 'run-end')",
      [result.runId],
    );
    expect(Number(ends[0]!.n)).toBe(2);
  }, 60_000);

  it('ends a fork whose model endpoint keeps failing invalid with model_error, not failed', async () => {
    const [original] = await loadLoggedRuns(log, { runIds: [originalRunId] });
    const server = await startOpenAiServer({ modelId: 'broken-model', chat: () => errorReply(500, 'internal error') });
    try {
      const result = await forkRun(log, {
        runId: originalRunId,
        step: original!.turns[1]!.step,
        harness: candidateVersionId,
        model: 'openai:broken-model',
        environment: { SELFHARNESS_LLM_BASE_URL: server.baseUrl, SELFHARNESS_LLM_MAX_RETRIES: '1' },
        sandbox,
      });
      expect(result).toMatchObject({ outcome: 'invalid', failureReason: 'model_error' });
      expect(result.detail).toMatch(/500/);
      const [run] = await log.query<{ outcome: string; failure_reason: string }>(
        'SELECT outcome, failure_reason FROM runs WHERE run_id = $1',
        [result.runId],
      );
      expect(run).toEqual({ outcome: 'invalid', failure_reason: 'model_error' });
    } finally {
      await server.close();
    }
  }, 60_000);

  it('refuses a step after the run finished and an unknown run, naming what to do', async () => {
    const [original] = await loadLoggedRuns(log, { runIds: [originalRunId] });
    const finishTurn = original!.turns.find((turn) => turn.calls.some((call) => call.tool === 'finish'));
    if (finishTurn)
      await expect(
        forkRun(log, { runId: originalRunId, step: finishTurn.step + 1, harness: 'default', sandbox }),
      ).rejects.toThrow(`called finish at step ${finishTurn.step}, before step ${finishTurn.step + 1}: fork at step`);
    await expect(forkRun(log, { runId: 'no-such-run', step: 3, harness: 'default', sandbox })).rejects.toThrow(
      'Unknown run no-such-run',
    );
  });
});
