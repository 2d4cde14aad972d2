import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findBubblewrap } from '../../tasks/index.js';
import {
  importHarnessWithMiddleware,
  type MechanismCount,
  mechanismCounts,
  type RunJson,
  rate,
  rateTable,
  runCounts,
  runTrialsCli,
  scratchFolder,
  sql,
} from './support-harness.js';

/**
 * The simulated profiles through the real command line and sandbox: each profile's runs, mined by the detectors,
 * show the mechanisms its documentation names; and the built-in middleware that targets a profile, in a harness
 * version imported with `selfharness harness import`, lowers the targeted mechanisms and raises the pass rate on the
 * same tasks and seeds. One batch per profile and harness: the 12 held-out tasks, seed 1, two trials at a time.
 *
 * `E2E_PRINT_RATES=1 npx vitest run tests/e2e/harness-sim-profiles.test.ts` prints the measured tables.
 */

const hasBubblewrap = findBubblewrap() !== undefined;

interface ProfileCase {
  readonly profile: 'late-artifacts' | 'blind-retry' | 'lost-state';
  /** The mechanisms its documentation (harness/models/sim/README.md) says it shows. */
  readonly documented: readonly string[];
  /**
   * Documented mechanisms whose rate over all runs must be highest in this profile. Left out: premature completion
   * (every simulated summary claims success, so each profile that fails after calling finish shows it), exploration
   * without implementation and lost environment state (see the note in the README section: the detectors miss most
   * of this profile's lost state, and late-artifacts' deferred writing counts as exploration as often).
   */
  readonly home: readonly string[];
  /** The built-in middleware that targets it, and the mechanisms that middleware must lower. */
  readonly middleware: readonly Record<string, unknown>[];
  readonly targeted: readonly string[];
}

const CASES: readonly ProfileCase[] = [
  {
    profile: 'late-artifacts',
    documented: ['missing-required-artifact', 'premature-completion', 'tool-call-loop'],
    home: ['missing-required-artifact', 'tool-call-loop'],
    middleware: [{ name: 'artifact-check' }],
    targeted: ['missing-required-artifact', 'premature-completion'],
  },
  {
    profile: 'blind-retry',
    documented: ['missing-dependency', 'repeated-failed-command'],
    home: ['missing-dependency', 'repeated-failed-command'],
    middleware: [{ name: 'failed-command-guard' }, { name: 'dependency-precheck' }],
    targeted: ['missing-dependency', 'repeated-failed-command'],
  },
  {
    profile: 'lost-state',
    documented: ['lost-environment-state', 'exploration-without-implementation', 'budget-exhaustion'],
    home: ['budget-exhaustion'],
    middleware: [{ name: 'persistent-shell' }, { name: 'exploration-nudge' }],
    targeted: ['lost-environment-state', 'exploration-without-implementation', 'budget-exhaustion'],
  },
];

/** A pattern of the text that each profile's middleware puts in front of the model, as the log holds it. */
const MIDDLEWARE_TEXT: Record<string, string> = {
  'late-artifacts': 'required files? (is|are) missing: ',
  'blind-retry': '(program is|programs are) not installed: ',
  'lost-state': 'read-only actions in a row without changing anything',
};

const BATCH = ['--tasks', 'held-out', '--seed', '1', '--concurrency', '2'];
const GROUP = "model || ' ' || harness_version";

describe.skipIf(!hasBubblewrap)('simulated profiles through selfharness run', () => {
  const scratch = scratchFolder('e2e-sim');
  const database = join(scratch.path, 'profiles.duckdb');
  const baseline = new Map<string, RunJson>();
  const treated = new Map<string, RunJson>();
  let defaultVersion = '';
  const versions = new Map<string, string>();
  let all: MechanismCount[] = [];
  let failed: MechanismCount[] = [];
  let totals = new Map<string, number>();
  let failedTotals = new Map<string, number>();

  const group = (profile: string, version: string) => `sim:${profile} ${version}`;

  beforeAll(async () => {
    for (const { profile, middleware } of CASES) {
      const run = await runTrialsCli(database, [...BATCH, '--model', `sim:${profile}`]);
      baseline.set(profile, run);
      defaultVersion = run.harnessVersion ?? '';
      const version = await importHarnessWithMiddleware(database, scratch.path, `sim-${profile}`, middleware);
      versions.set(profile, version);
      treated.set(profile, await runTrialsCli(database, [...BATCH, '--model', `sim:${profile}`, '--harness', version]));
    }
    all = await mechanismCounts(database, GROUP, true);
    failed = await mechanismCounts(database, GROUP, false);
    const counts = await runCounts(database, GROUP);
    totals = new Map(counts.map((row) => [row.group, row.runs]));
    failedTotals = new Map(counts.map((row) => [row.group, row.failed]));
    if (process.env.E2E_PRINT_RATES) printTables();
  }, 600_000);
  afterAll(() => scratch.remove());

  function printTables(): void {
    const mechanisms = [...new Set(all.map((row) => row.mechanism))].sort();
    const baselines = CASES.map(({ profile }) => group(profile, defaultVersion));
    const share = (counts: MechanismCount[], runs: Map<string, number>) => (name: string, mechanism: string) =>
      `${counts.find((row) => row.group === name && row.mechanism === mechanism)?.runs ?? 0}/${runs.get(name) ?? 0}`;
    console.log(`All runs, default harness:\n${rateTable(mechanisms, baselines, share(all, totals))}`);
    console.log(
      `Failed runs (detected_mechanisms), default harness:\n${rateTable(mechanisms, baselines, share(failed, failedTotals))}`,
    );
    for (const { profile } of CASES) {
      const pair = [group(profile, defaultVersion), group(profile, versions.get(profile) ?? '')];
      console.log(
        `${profile}: pass rate ${baseline.get(profile)?.summary.overall.passRate} → ${treated.get(profile)?.summary.overall.passRate}\n${rateTable(mechanisms, pair, share(failed, failedTotals))}`,
      );
    }
  }

  it('logs every trial of every batch as a finished, valid run of its model and harness version', async () => {
    for (const { profile } of CASES) {
      for (const [run, version] of [
        [baseline.get(profile), defaultVersion],
        [treated.get(profile), versions.get(profile)],
      ] as const) {
        expect(run?.results).toHaveLength(12);
        expect(run?.summary.overall).toMatchObject({ trials: 12, invalid: 0, unfinished: 0 });
        expect(totals.get(group(profile, version ?? ''))).toBe(12);
      }
    }
    expect(new Set(versions.values()).size).toBe(3);
    expect([...versions.values()]).not.toContain(defaultVersion);
  });

  it("shows each profile's own mechanism mix when mined, different from the other profiles'", () => {
    const profiles = CASES.map(({ profile }) => profile);
    const baselineRate = (profile: string, mechanism: string) =>
      rate(all, totals, group(profile, defaultVersion), mechanism);
    const mechanismsSeen = [...new Set(all.map((row) => row.mechanism))];
    const distinctive = new Map<string, string>();
    for (const { profile, documented, home } of CASES) {
      const others = profiles.filter((other) => other !== profile);
      // The documented mechanisms that are this profile's own: no other profile shows them as often.
      for (const mechanism of home) {
        const own = baselineRate(profile, mechanism);
        for (const other of others) {
          expect(own, `${mechanism}: sim:${profile} vs sim:${other}`).toBeGreaterThan(baselineRate(other, mechanism));
        }
      }
      // Its most distinctive mechanism (the largest lead over every other profile) is one its documentation names.
      const lead = (mechanism: string) =>
        baselineRate(profile, mechanism) - Math.max(...others.map((other) => baselineRate(other, mechanism)));
      const [top] = [...mechanismsSeen].sort((a, b) => lead(b) - lead(a));
      expect(documented, `most distinctive mechanism of sim:${profile}`).toContain(top);
      expect(lead(top ?? '')).toBeGreaterThan(0);
      distinctive.set(profile, top ?? '');
    }
    expect(new Set(distinctive.values()).size).toBe(CASES.length);
  });

  it('explains most failures of each profile by a mechanism its documentation names', async () => {
    for (const { profile, documented } of CASES) {
      const [row] = await sql<{ failed: number; explained: number }>(
        database,
        `SELECT CAST(count(*) AS INTEGER) AS failed,
                CAST(count(*) FILTER (WHERE run_id IN (SELECT run_id FROM detected_mechanisms
                     WHERE mechanism IN (${documented.map((mechanism) => `'${mechanism}'`).join(', ')}))) AS INTEGER) AS explained
         FROM failed_runs WHERE model = 'sim:${profile}' AND harness_version = '${defaultVersion}'`,
      );
      expect(row?.failed, `failed runs of sim:${profile}`).toBeGreaterThan(0);
      expect((row?.explained ?? 0) / (row?.failed ?? 1), `sim:${profile}`).toBeGreaterThanOrEqual(0.75);
    }
  });

  it('lowers the targeted mechanisms and raises the pass rate with the middleware that targets each profile', async () => {
    for (const { profile, targeted } of CASES) {
      const before = baseline.get(profile)?.summary.overall.passRate ?? 1;
      const after = treated.get(profile)?.summary.overall.passRate ?? 0;
      expect(after, `pass rate of sim:${profile} with ${versions.get(profile)}`).toBeGreaterThan(before);
      for (const mechanism of targeted) {
        const count = (version: string) =>
          failed.find((row) => row.group === group(profile, version) && row.mechanism === mechanism)?.runs ?? 0;
        const without = count(defaultVersion);
        expect(without, `${mechanism} in failed runs of sim:${profile}, default harness`).toBeGreaterThan(0);
        expect(count(versions.get(profile) ?? ''), `${mechanism} of sim:${profile} with the middleware`).toBeLessThan(
          without,
        );
      }
    }
  });

  it("puts each middleware's message in front of the model in the treated runs, and never on the default harness", async () => {
    for (const { profile } of CASES) {
      const rows = await sql<{ harness_version: string; runs: number }>(
        database,
        `SELECT r.harness_version, CAST(count(DISTINCT r.run_id) AS INTEGER) AS runs
         FROM runs r JOIN events e USING (run_id)
         WHERE r.model = 'sim:${profile}' AND e.type IN ('tool-result', 'step-create')
           AND regexp_matches(CAST(e.data AS VARCHAR), '${MIDDLEWARE_TEXT[profile]}')
         GROUP BY ALL`,
      );
      const runs = (version: string) => rows.find((row) => row.harness_version === version)?.runs ?? 0;
      expect(runs(versions.get(profile) ?? ''), `sim:${profile} with its middleware`).toBeGreaterThan(0);
      expect(runs(defaultVersion), `sim:${profile} on the default harness`).toBe(0);
    }
  });
});
