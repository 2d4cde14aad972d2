import { rmSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasSharedTraces, sharedTracesSkipReason } from '../support/shared-traces.js';
import { createWorkspace, formats, type Workspace } from './formats.js';
import { anyMutation } from './mutations.js';
import { baselineOf, checkMutation, type Snapshot } from './properties.js';

/**
 * Property-based fuzzing of every importer. For each format a temp folder holds copies of its fixtures and, where the
 * shared traces are present, a few small real files; each run mutates one of them (bytes, JSON values, lines, the file
 * as a whole), ingests the folder into a fresh log and checks that nothing throws or hangs, that every broken record
 * is rejected with its file, position and reason, that every untouched record still loads, that the projections
 * equal a rebuild, and that a re-import adds nothing. fast-check prints the seed and the shrunk mutation of a failure;
 * `FUZZ_RUNS` raises the number of runs per format for a longer search.
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 12);
/**
 * The same mutations on every run of `npm test` (a fixed seed), so that a red build names a change, not a draw.
 * `FUZZ_SEED=random` searches new ones; `FUZZ_SEED` with `FUZZ_PATH`, as fast-check prints them, replays a failure.
 */
const DEFAULT_SEED = 20_261_206;
const seedOption = process.env.FUZZ_SEED ?? String(DEFAULT_SEED);
const replay =
  seedOption === 'random'
    ? {}
    : { seed: Number(seedOption), path: process.env.FUZZ_PATH, endOnFailure: process.env.FUZZ_PATH !== undefined };

if (!hasSharedTraces) console.warn(`fuzzing fixtures only: ${sharedTracesSkipReason}`);

for (const format of Object.keys(formats)) {
  describe(`fuzzing the ${format} importer`, () => {
    let workspace: Workspace;
    let baseline: Snapshot;

    beforeAll(async () => {
      workspace = createWorkspace(format);
      baseline = await baselineOf(workspace);
    });
    afterAll(() => {
      rmSync(workspace.root, { recursive: true, force: true });
    });

    it('loads the untouched workspace', () => {
      expect(baseline.events.length).toBeGreaterThan(0);
      expect(baseline.summary.formats.map((summary) => summary.format)).toContain(format);
    });

    it('never throws, rejects every broken record with a reason and loads every untouched one', async () => {
      const member = fc.nat({ max: workspace.members.length - 1 });
      await fc.assert(
        fc.asyncProperty(
          member,
          anyMutation(workspace.members.some((entry) => entry.lines)),
          async (index, mutation) => {
            const chosen = workspace.members[index];
            if (!chosen) return;
            await checkMutation(workspace, baseline, chosen, mutation);
          },
        ),
        { numRuns: RUNS, ...replay },
      );
    });
  });
}
