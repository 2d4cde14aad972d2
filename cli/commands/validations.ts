import type { Command } from 'commander';
import { InputError, UserError } from '../../core/index.js';
import { DEFAULT_SUITE_ROOT, loadSuite } from '../../tasks/index.js';
import {
  acceptedEdits,
  candidateOfProposal,
  currentHarness,
  listPromotions,
  listValidations,
  loadProposal,
  promoteAccepted,
  replayCandidate,
  resolveHarness,
  rollbackHarness,
} from '../../validator/index.js';
import { type GlobalOptions, withLog } from '../context.js';
import { formatTable, printJson } from '../output.js';
import { createProgress } from '../progress.js';

/**
 * The validator on the command line: `replay` a proposal against the log, list every `validations` decision,
 * `promote` the accepted edits, show the current harness (`harness-head`) and `rollback` to an earlier one.
 */
export function registerValidations(program: Command, globals: () => GlobalOptions): void {
  program
    .command('validations')
    .description('List validation decisions (replay screening, gate, merge), oldest first, with their reasons')
    .option('--proposal <id>', 'only decisions about this proposal')
    .option('--json', 'print the decisions with their metrics as JSON')
    .action(async (options: { proposal?: string; json?: boolean }) => {
      const global = globals();
      const decisions = await withLog(global, (log) => listValidations(log, options.proposal), true);
      if (global.json || options.json) {
        printJson(decisions);
        return;
      }
      if (decisions.length === 0) {
        console.log('No validation decisions yet: replay a proposal with `selfharness replay PROPOSAL`.');
        return;
      }
      console.log(
        formatTable(
          decisions.map((decision) => ({
            time: decision.time ?? null,
            proposal: decision.proposalId,
            stage: decision.stage,
            decision: decision.decision,
            gate: decision.gate ?? null,
            reason: decision.reasons[0] ?? '',
          })),
        ),
      );
    });

  program
    .command('replay')
    .description(
      "Shadow-replay a proposal's harness over the logged runs: where it would have acted on its target failures and on passing runs; screen it and record the decision",
    )
    .argument('<proposal>', 'a proposal id (or unique prefix)')
    .option('--max-passing-fire-rate <rate>', 'screen out when it fires on more than this share of passing runs', '0.5')
    .option('--max-passing-runs <n>', 'passing runs replayed besides those of the target tasks', '1000')
    .option('--dry-run', 'print the verdict without recording it')
    .action(
      async (reference: string, options: { maxPassingFireRate: string; maxPassingRuns: string; dryRun?: boolean }) => {
        const global = globals();
        const rate = Number(options.maxPassingFireRate);
        if (!(rate >= 0 && rate <= 1))
          throw new UserError(`--max-passing-fire-rate must be between 0 and 1, got "${options.maxPassingFireRate}".`);
        const maxPassingRuns = Number(options.maxPassingRuns);
        if (!Number.isInteger(maxPassingRuns) || maxPassingRuns < 0)
          throw new UserError(`--max-passing-runs must be a whole number, got "${options.maxPassingRuns}".`);
        const progress = createProgress();
        const result = await withLog(global, async (log) => {
          const proposal = await loadProposal(log, reference);
          return replayCandidate(log, candidateOfProposal(proposal), {
            maxPassingFireRate: rate,
            maxPassingRuns,
            record: options.dryRun !== true,
            taskArtifacts: suiteArtifacts(),
            onProgress: ({ done, total }) => progress.update(`replayed ${done} of ${total} runs`),
          });
        });
        progress.done();
        if (global.json) {
          printJson({
            proposalId: result.proposalId,
            screenedOut: result.verdict.screenedOut,
            reasons: result.verdict.reasons,
            metrics: result.verdict.metrics,
            targets: result.summary?.target.perRun ?? [],
            recorded: result.appended,
          });
          return;
        }
        console.log(
          `Proposal ${result.proposalId}: ${result.verdict.screenedOut ? 'screened out' : 'kept for trials'}`,
        );
        for (const reason of result.verdict.reasons) console.log(`  ${reason}`);
        const perRun = result.summary?.target.perRun ?? [];
        if (perRun.length > 0)
          console.log(
            formatTable(
              perRun.map((run) => ({
                run: run.runId,
                first_intervention: run.firstInterventionStep ?? null,
                failure_evidence: run.firstEvidenceStep ?? null,
                lead_steps: run.leadSteps ?? null,
                kinds: run.kinds.join(', '),
              })),
            ),
          );
        if (options.dryRun) console.log('(dry run: nothing recorded)');
      },
    );

  program
    .command('promote')
    .description('Merge the edits the gate accepted into the next harness version and make it current')
    .option('--base <version>', 'the harness the edits were validated against (default: the current one)')
    .action(async (options: { base?: string }) => {
      const global = globals();
      const result = await withLog(global, async (log) => {
        const base =
          options.base !== undefined
            ? (await resolveHarness(log, options.base)).versionId
            : (await currentHarness(log)).version.versionId;
        const edits = await acceptedEdits(log, base);
        if (edits.length === 0)
          throw new UserError(
            `No accepted edits are waiting for harness ${base}: see the decisions with \`selfharness validations\`.`,
          );
        return promoteAccepted(log, { baseVersionId: base, edits });
      });
      if (global.json) {
        printJson({ ...result, plan: { merged: result.plan.merged, conflicts: result.plan.conflicts } });
        return;
      }
      if (!result.version) console.log('No edit could be merged.');
      else
        console.log(
          `${result.appended ? 'Promoted' : 'Already current:'} harness ${result.version.versionId} (parent ${result.version.parentId})`,
        );
      console.log(result.changelog);
    });

  program
    .command('harness-head')
    .description('Show the current harness version (the latest promotion or rollback), or the whole history')
    .option('--history', 'list every promotion and rollback, oldest first')
    .action(async (options: { history?: boolean }) => {
      const global = globals();
      const { head, history } = await withLog(
        global,
        async (log) => ({ head: await currentHarness(log), history: await listPromotions(log) }),
        true,
      );
      if (global.json) {
        printJson(options.history ? history : { versionId: head.version.versionId, promotion: head.promotion ?? null });
        return;
      }
      if (options.history) {
        console.log(
          history.length === 0
            ? `No promotions yet: the current harness is the built-in default ${head.version.versionId}.`
            : formatTable(
                history.map((promotion) => ({
                  time: promotion.time ?? null,
                  reason: promotion.reason,
                  from: promotion.previousVersionId ?? null,
                  to: promotion.versionId,
                  proposals: promotion.proposalIds.join(', '),
                })),
              ),
        );
        return;
      }
      if (!head.promotion) {
        console.log(`${head.version.versionId} (the built-in default; nothing promoted yet)`);
        return;
      }
      console.log(`${head.version.versionId} (${head.promotion.reason} at ${head.promotion.time ?? 'unknown time'})`);
      console.log(head.promotion.changelog);
    });

  program
    .command('rollback')
    .description('Make an earlier harness version current again (`default` or a version id prefix)')
    .argument('<version>', 'a version that was current before, or `default`')
    .option('--reason <text>', 'why, for the changelog')
    .action(async (reference: string, options: { reason?: string }) => {
      const global = globals();
      const result = await withLog(global, (log) =>
        rollbackHarness(log, reference, options.reason !== undefined ? { reason: options.reason } : {}),
      );
      if (global.json) printJson(result);
      else if (!result.appended) console.log(`Harness ${result.version.versionId} is already the current one.`);
      else console.log(`Rolled back from ${result.previousVersionId} to ${result.version.versionId}.`);
    });
}

/**
 * Required files of the bundled tasks, for the artifact check's replay. Runs of other datasets need none of them, so
 * a suite that cannot be read (an installation without it) leaves only the files instructions name.
 */
function suiteArtifacts(): Map<string, readonly string[]> {
  try {
    return new Map(loadSuite(DEFAULT_SUITE_ROOT).tasks.map((task) => [task.id, task.requiredArtifacts]));
  } catch (error) {
    if (error instanceof InputError) return new Map();
    throw error;
  }
}
