import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Detection, detectMechanisms } from '../../analytics/detectors.js';
import { installAnalytics } from '../../analytics/schema.js';
import { EventLog } from '../../core/index.js';
import { ingestPaths } from '../../ingest/ingest.js';
import { hasSharedTraces, sharedTracesDir, sharedTracesSkipReason } from '../support/shared-traces.js';

describe.skipIf(!hasSharedTraces)(
  `detectors on real traces (${hasSharedTraces ? sharedTracesDir : sharedTracesSkipReason})`,
  () => {
    let log: EventLog;
    let found: Detection[];
    const of = (mechanism: string) => found.filter((entry) => entry.mechanism === mechanism);

    beforeAll(async () => {
      log = await EventLog.open(join(mkdtempSync(join(tmpdir(), 'selfharness-detectors-')), 'real.duckdb'));
      await installAnalytics(log.database);
      await ingestPaths(log, [
        join(sharedTracesDir, 'swe-agent-multi-swe-bench-java'),
        join(sharedTracesDir, 'tb1-terminus1'),
        join(sharedTracesDir, 'atif'),
      ]);
      found = await detectMechanisms(log);
    }, 120_000);
    afterAll(() => log?.close());

    it('marks every SWE-agent run that hit its cost limit (exit_cost) as budget exhaustion', async () => {
      const costLimited = await log.query<{ run_id: string }>(
        "SELECT run_id FROM runs WHERE source_format = 'swe-agent' AND outcome = 'failed' AND failure_reason LIKE '%exit_cost%'",
      );
      expect(costLimited.length).toBe(66);
      const budget = new Set(of('budget-exhaustion').map((entry) => entry.runId));
      for (const run of costLimited) expect(budget.has(run.run_id), run.run_id).toBe(true);
      expect(of('budget-exhaustion').find((entry) => entry.runId === costLimited[0]?.run_id)?.excerpt).toContain(
        'exit_cost',
      );
    });

    it('shows repeated failing edits and repeated failing commands of SWE-agent', () => {
      const repeated = of('repeated-failed-command');
      const edits = repeated.filter((entry) => entry.excerpt.includes('edit (file edits)'));
      expect(edits.length).toBeGreaterThanOrEqual(3);
      expect(edits[0]?.excerpt).toMatch(/Your proposed edit has introduced new syntax error|Usage: edit/);
      const maven = repeated.find((entry) => entry.runId === 'swe-agent:deepseek-chat-v2:apache__dubbo-7041');
      expect(maven?.excerpt).toMatch(/^`\.\/mvnw compile` failed 13 times: Error: JAVA_HOME is not defined correctly/);
      expect(maven?.evidenceSteps).toEqual([13, 14, 15, 16, 17, 18, 19, 20, 21, 22]);
    });

    it('finds the missing Java toolchain as missing dependencies and prose sent to the shell as malformed calls', () => {
      const dependencies = of('missing-dependency');
      expect(dependencies.filter((entry) => /javac: command not found/.test(entry.excerpt)).length).toBeGreaterThan(20);
      expect(
        of('malformed-tool-call').some((entry) => /unexpected EOF|DISCUSSION: command not found/.test(entry.excerpt)),
      ).toBe(true);
    });

    it('finds premature completion in runs that submitted and failed verification, in Terminus runs too', () => {
      const premature = of('premature-completion');
      expect(premature.some((entry) => entry.excerpt.startsWith('called submit'))).toBe(true);
      expect(premature.some((entry) => entry.runId.startsWith('tb1:'))).toBe(true);
    });

    it('never mines invalid runs, and keeps excerpts short', async () => {
      const invalid = new Set(
        (await log.query<{ run_id: string }>("SELECT run_id FROM runs WHERE outcome = 'invalid'")).map(
          (row) => row.run_id,
        ),
      );
      expect(invalid.size).toBeGreaterThan(0);
      expect(found.filter((entry) => invalid.has(entry.runId))).toEqual([]);
      expect(found.every((entry) => entry.outcome === 'failed' && entry.excerpt.length <= 300)).toBe(true);
    });

    it('points every evidence step at a real step or tool call of its run', async () => {
      const [row] = await log.query<{ n: bigint; dangling: bigint }>(`
        SELECT count(*) AS n, count(*) FILTER (WHERE NOT EXISTS (
                 SELECT 1 FROM steps s WHERE s.run_id = d.run_id AND s.step = e.step
                 UNION ALL SELECT 1 FROM tool_calls t WHERE t.run_id = d.run_id AND t.step = e.step)) AS dangling
        FROM detected_mechanisms d, unnest(d.evidence_steps) AS e(step)`);
      expect(Number(row?.n)).toBeGreaterThan(500);
      expect(Number(row?.dangling)).toBe(0);
    });
  },
);
