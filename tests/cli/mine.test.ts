import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MiningResult } from '../../analytics/mine.js';
import { EventLog } from '../../core/index.js';
import { runCli } from '../support/cli.js';
import { weaknessEvents } from '../support/mining-log.js';
import { hasSharedTraces, sharedTracesDir, sharedTracesSkipReason } from '../support/shared-traces.js';
import { writeTinyEmbeddingModel } from '../support/tiny-embedding-model.js';

const folder = mkdtempSync(join(tmpdir(), 'selfharness-mine-cli-'));
const modelFolder = writeTinyEmbeddingModel(join(folder, 'model'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

async function mineJson(db: string, args: readonly string[]): Promise<MiningResult> {
  const result = await runCli(['--db', db, 'mine', '--json', ...args]);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as MiningResult;
}

describe('selfharness mine on a log with known weaknesses', () => {
  const db = join(folder, 'weaknesses.duckdb');

  beforeAll(async () => {
    const log = await EventLog.open(db);
    await log.appendEvents(weaknessEvents());
    log.close();
  });

  it('prints ranked, readable cards with evidence and the passing runs to preserve', async () => {
    const result = await runCli(['--db', db, 'mine', '--mode', 'signature']);
    expect(result.code, result.stderr).toBe(0);
    const output = result.stdout;
    expect(output).toContain('8 failed runs, 8 with a detected mechanism: 8 failures grouped by exact signature.');
    expect(output).toContain(
      '1 group (1 failure) left out: a cluster needs failures from at least 2 runs across at least 2 tasks.',
    );
    expect(output.indexOf('#1  Repeated failed command: `make test`')).toBeGreaterThan(0);
    expect(output.indexOf('#2  Missing dependency: `python3`')).toBeGreaterThan(output.indexOf('#1  '));
    expect(output).toContain('4 failures in 4 runs across 4 tasks');
    expect(output).toContain('- run make-1 (t1, model-a), steps 2, 3, 4: `make test` failed 3 times');
    expect(output).toContain('$ make test → exit 2: make: *** [test] Error 1');
    expect(output).toContain('preserve: 2 passing runs on these tasks (pass-1, pass-2)');
  });

  it('prints the cards as JSON with --top, and a second run embeds nothing and gives the same clusters', async () => {
    const args = ['--embedder', `transformers:${modelFolder}`, '--seed', '5', '--top', '1'];
    const first = await mineJson(db, args);
    expect(first.clusters).toHaveLength(1);
    expect(first.clusters[0]?.rank).toBe(1);
    expect(first.embedding).toEqual({ distinct: 3, embedded: 3, cached: 0 });
    const second = await mineJson(db, args);
    expect(second.embedding).toEqual({ distinct: 3, embedded: 0, cached: 3 });
    expect(second.clusters).toEqual(first.clusters);
  });

  it('runs k-means with the bundled Universal Sentence Encoder lite by default', async () => {
    const result = await mineJson(db, ['--top', '50']);
    expect(result.embedder).toBe('use-lite');
    expect(result.embedding?.distinct).toBe(3);
    expect(result.k).toBe(2);
    const kept = result.clusters.reduce((total, card) => total + card.failureCount, 0);
    expect(kept + result.dropped.failures).toBe(8);
    expect(result.clusters.length).toBeGreaterThan(0);
    for (const card of result.clusters) expect([card.runCount >= 2, card.taskCount >= 2]).toEqual([true, true]);
  });

  it('lists the valid embedders for an unknown one, and the modes for an unknown mode', async () => {
    const embedder = await runCli(['--db', db, 'mine', '--embedder', 'bert']);
    expect(embedder.code).toBe(2);
    expect(embedder.stderr).toMatch(/error: Unknown embedder "bert"\. Valid embedders:/);
    expect(embedder.stderr).toContain('transformers:PATH');
    expect(embedder.stderr).toContain('openai:MODEL');
    const mode = await runCli(['--db', db, 'mine', '--mode', 'hdbscan']);
    expect(mode.code).toBe(2);
    expect(mode.stderr).toContain('Unknown --mode "hdbscan": use kmeans or signature.');
  });

  it('says when there are no failed runs to mine and what to do', async () => {
    const result = await runCli(['--db', db, 'mine', '--mode', 'signature', '--model', 'model-z']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`error: No failed runs to mine in ${db} for model model-z.`);
    expect(result.stderr).toContain('selfharness ingest PATH');
    expect(result.stderr).toContain('drop --model/--split');
  });
});

describe.skipIf(!hasSharedTraces)(
  `selfharness mine on the real traces (${hasSharedTraces ? sharedTracesDir : sharedTracesSkipReason})`,
  () => {
    const db = join(folder, 'traces.duckdb');

    beforeAll(async () => {
      const result = await runCli(['--db', db, '--json', 'ingest', sharedTracesDir]);
      expect(result.code, result.stderr).toBe(0);
    }, 180_000);

    async function unresolvedSteps(result: MiningResult): Promise<unknown[]> {
      const pairs = result.clusters.flatMap((card) =>
        card.evidence.flatMap((evidence) => evidence.steps.map((step) => [evidence.runId, step] as const)),
      );
      expect(pairs.length).toBeGreaterThan(0);
      const values = pairs.map(([runId, step]) => `('${runId.replaceAll("'", "''")}', ${step})`).join(', ');
      const query = `SELECT v.run_id, v.step FROM (VALUES ${values}) v(run_id, step)
        WHERE NOT EXISTS (SELECT 1 FROM steps s WHERE s.run_id = v.run_id AND s.step = v.step)
          AND NOT EXISTS (SELECT 1 FROM tool_calls t WHERE t.run_id = v.run_id AND t.step = v.step)`;
      const checked = await runCli(['--db', db, '--json', 'sql', query]);
      expect(checked.code, checked.stderr).toBe(0);
      return JSON.parse(checked.stdout);
    }

    it('returns ranked clusters whose evidence steps exist, the same for the same seed', async () => {
      const args = ['--embedder', `transformers:${modelFolder}`, '--seed', '11', '--top', '50'];
      const first = await mineJson(db, args);
      expect(first.failedRuns).toBeGreaterThan(1000);
      expect(first.clusters.length).toBeGreaterThanOrEqual(2);
      expect(first.clusters.map((card) => card.rank)).toEqual(first.clusters.map((_, index) => index + 1));
      const scores = first.clusters.map((card) => card.score);
      expect(scores).toEqual([...scores].sort((left, right) => right - left));
      for (const card of first.clusters) {
        expect(card.runCount).toBeGreaterThanOrEqual(2);
        expect(card.taskCount).toBeGreaterThanOrEqual(2);
        expect(card.evidence.length).toBeGreaterThanOrEqual(3);
        expect(card.evidence.length).toBeLessThanOrEqual(5);
      }
      expect(await unresolvedSteps(first)).toEqual([]);
      const second = await mineJson(db, args);
      expect(second.embedding?.embedded, 'a second run over the same log embeds nothing new').toBe(0);
      expect(second.clusters).toEqual(first.clusters);
    }, 120_000);

    it('shows the SWE-agent failure modes: cost-limit exhaustion and repeated failing edits', async () => {
      const result = await mineJson(db, ['--mode', 'signature', '--model', 'doubao-pro-128k']);
      expect(result.failedRuns).toBe(39);
      const byMechanism = new Map(result.clusters.map((card) => [card.mechanisms[0]?.mechanism, card]));
      const budget = byMechanism.get('budget-exhaustion');
      expect(budget?.runCount).toBeGreaterThanOrEqual(20);
      expect(budget?.evidence.every((evidence) => /exit_cost/.test(evidence.excerpt))).toBe(true);
      const repeated = byMechanism.get('repeated-failed-command');
      expect(repeated?.label).toBe('Repeated failed command: `edit`');
      expect(
        repeated?.evidence.some((evidence) => /proposed edit has introduced new syntax error/.test(evidence.excerpt)),
      ).toBe(true);
      expect(await unresolvedSteps(result)).toEqual([]);
    }, 60_000);
  },
);
