import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installAnalytics } from '../../analytics/schema.js';
import { DEMO_PROFILES, DEMO_SETTINGS } from '../../cli/commands/demo.js';
import { EventLog } from '../../core/index.js';
import { RuleProposer } from '../../proposer/index.js';
import { findBubblewrap, openSandbox } from '../../tasks/index.js';
import { improve } from '../../validator/index.js';

describe.skipIf(findBubblewrap() === undefined)('improve on each simulated profile', () => {
  let folder: string;
  beforeAll(() => {
    folder = mkdtempSync(join(tmpdir(), 'selfharness-profiles-'));
  });
  afterAll(() => rmSync(folder, { recursive: true, force: true }));

  it('raises every profile’s held-out pass rate with edits that differ between profiles (the demo’s settings)', async () => {
    const sandbox = await openSandbox();
    // The three jobs use separate databases (one harness head each) and run side by side.
    const results = await Promise.all(
      DEMO_PROFILES.map(async (profile) => {
        const log = await EventLog.open(join(folder, `${profile}.duckdb`));
        try {
          await installAnalytics(log.database);
          return await improve(log, {
            model: `sim:${profile}`,
            iterations: DEMO_SETTINGS.iterations,
            candidates: DEMO_SETTINGS.candidates,
            proposer: new RuleProposer(),
            gate: DEMO_SETTINGS.gate,
            attempts: DEMO_SETTINGS.attempts,
            concurrency: 2,
            maxPassingFireRate: DEMO_SETTINGS.maxPassingFireRate,
            sealed: false,
            trials: { sandbox },
          });
        } finally {
          log.close();
        }
      }),
    );
    for (const result of results) {
      expect(result.after.heldOut!.rate, result.model).toBeGreaterThan(result.before.heldOut!.rate);
      expect(result.acceptedEdits.length, result.model).toBeGreaterThan(0);
    }
    const editSets = results.map((result) =>
      result.acceptedEdits
        .map((edit) => edit.summary)
        .sort()
        .join(' | '),
    );
    expect(new Set(editSets).size).toBe(DEMO_PROFILES.length);
  }, 900_000);
});
