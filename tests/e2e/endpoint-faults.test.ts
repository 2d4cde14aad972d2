import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findBubblewrap } from '../../tasks/index.js';
import {
  type ChatRequest,
  errorReply,
  malformedReply,
  type OpenAiTestServer,
  type ScriptedReply,
  startOpenAiServer,
} from '../support/openai-server.js';
import { type RunJson, scratchFolder, selfharness, sql } from './support-harness.js';

/**
 * A model endpoint that fails (500s, garbage, no answer in time) is nobody's fault in the task: the runtime retries
 * within its limit, then the trial ends `invalid` with the reason, and no pass rate counts it as an agent failure.
 */

const hasBubblewrap = findBubblewrap() !== undefined;

/** Each task meets one kind of broken endpoint. */
const FAULTS: Record<string, ScriptedReply> = {
  'count-words': errorReply(500, 'internal error'),
  'dedupe-emails': malformedReply(),
  'backup-script': { ...errorReply(200, 'late'), delayMs: 2_000 },
};

/** A phrase of each task's instruction, which the model sees in its first user message. */
const INSTRUCTION_PHRASES: Record<string, string> = {
  'count-words': 'notes/text.txt',
  'dedupe-emails': 'data/emails.txt',
  'backup-script': 'backup.sh',
};

function taskOf(request: ChatRequest): string {
  const text = JSON.stringify(request.messages);
  return Object.keys(FAULTS).find((task) => text.includes(INSTRUCTION_PHRASES[task] ?? task)) ?? 'unknown';
}

describe.skipIf(!hasBubblewrap)('a model endpoint that times out, answers 500 or garbage', () => {
  const scratch = scratchFolder('e2e-endpoint-faults');
  const database = join(scratch.path, 'faults.duckdb');
  let server: OpenAiTestServer;
  let output: RunJson;
  const requestsPerTask = new Map<string, number>();

  beforeAll(async () => {
    server = await startOpenAiServer({
      modelId: 'flaky-model',
      chat: (request) => {
        const task = taskOf(request);
        requestsPerTask.set(task, (requestsPerTask.get(task) ?? 0) + 1);
        return FAULTS[task] ?? errorReply(500);
      },
    });
    const result = await selfharness(
      database,
      ['run', '--tasks', ...Object.keys(FAULTS), '--model', 'openai:flaky-model', '--json'],
      {
        env: {
          SELFHARNESS_LLM_BASE_URL: server.baseUrl,
          SELFHARNESS_LLM_MAX_RETRIES: '1',
          SELFHARNESS_LLM_TIMEOUT_MS: '500',
        },
      },
    );
    output = JSON.parse(result.stdout) as RunJson;
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    scratch.remove();
  });

  it('retries each call once (the limit it was given), then stops asking', () => {
    // One call plus one retry per trial.
    expect(Object.fromEntries(requestsPerTask)).toEqual({ 'count-words': 2, 'dedupe-emails': 2, 'backup-script': 2 });
  });

  it('marks every such trial invalid with model_error, and counts none as failed', () => {
    expect(output.results.map((trial) => [trial.task, trial.outcome, trial.failureReason]).sort()).toEqual([
      ['backup-script', 'invalid', 'model_error'],
      ['count-words', 'invalid', 'model_error'],
      ['dedupe-emails', 'invalid', 'model_error'],
    ]);
    expect(output.summary.overall).toMatchObject({ passed: 0, failed: 0, invalid: 3 });
    const detail = new Map(output.results.map((trial) => [trial.task, (trial as { detail?: string }).detail ?? '']));
    expect(detail.get('count-words')).toMatch(/^The model call failed: 500 internal error/);
    expect(detail.get('backup-script')).toMatch(/timed out/i);
  });

  it('keeps the reason in the log, and leaves the runs out of the failures analysts and the miner see', async () => {
    const runs = await sql<{ task: string; outcome: string; failure_reason: string; detail: string }>(
      database,
      `SELECT r.task, r.outcome, r.failure_reason, max_by(s.message, s.step) AS detail
       FROM runs r JOIN steps s USING (run_id) GROUP BY ALL ORDER BY r.task`,
    );
    expect(runs.map((run) => [run.task, run.outcome, run.failure_reason])).toEqual([
      ['backup-script', 'invalid', 'model_error'],
      ['count-words', 'invalid', 'model_error'],
      ['dedupe-emails', 'invalid', 'model_error'],
    ]);
    expect(runs.find((run) => run.task === 'count-words')?.detail).toMatch(
      /^The model call failed: 500 internal error/,
    );
    expect(runs.find((run) => run.task === 'backup-script')?.detail).toMatch(/timed out/i);
    const failed = await sql<{ n: number }>(database, 'SELECT count(*) AS n FROM failed_runs');
    expect(failed[0]?.n).toBe(0);
  });
});
