import type { ClusterCard, EvidenceExcerpt } from '../../analytics/ranking.js';
import { defaultHarnessSpec, defaultVersionId, editableSurfaces, type HarnessSpec } from '../../harness/index.js';
import type { EarlierProposal, ProposalBrief } from '../../proposer/index.js';

/** One cited failure, as mining writes it. */
export function evidence(
  runId: string,
  mechanism: string,
  excerpt: string,
  calls: EvidenceExcerpt['calls'] = [],
): EvidenceExcerpt {
  return { runId, task: `task-${runId}`, model: 'model-a', mechanism, firstStep: 2, steps: [2, 3], excerpt, calls };
}

/** A ranked cluster card for one mechanism, with its evidence and two passing runs to preserve. */
export function clusterCard(
  clusterId: string,
  mechanism: string,
  excerpts: readonly EvidenceExcerpt[],
  rank = 1,
): ClusterCard {
  const runIds = excerpts.map((entry) => entry.runId);
  const tasks = excerpts.map((entry) => entry.task);
  return {
    clusterId,
    rank,
    label: `${mechanism} cluster`,
    mode: 'signature',
    criticality: 'unknown',
    score: runIds.length,
    mechanisms: [{ mechanism, failures: runIds.length }],
    failureCount: runIds.length,
    runCount: runIds.length,
    taskCount: tasks.length,
    tasks,
    models: ['model-a'],
    runIds,
    evidence: [...excerpts],
    preserve: {
      passingRunCount: 2,
      passingRuns: [
        { runId: 'pass-1', task: tasks[0] ?? 't', model: 'model-a' },
        { runId: 'pass-2', task: tasks[1] ?? 't', model: 'model-a' },
      ],
    },
  };
}

/** Cards for every mechanism the detectors know, with evidence as the detectors phrase it. */
export function cardsByMechanism(): Record<string, ClusterCard> {
  const make = (mechanism: string, excerpts: [string, EvidenceExcerpt['calls']?][]) =>
    clusterCard(
      `c-${mechanism}`,
      mechanism,
      excerpts.map(([excerpt, calls], index) => evidence(`${mechanism}-${index + 1}`, mechanism, excerpt, calls ?? [])),
    );
  return {
    'repeated-failed-command': make('repeated-failed-command', [
      ['`make test` failed 4 times: make: *** [test] Error 1'],
      ['`make test` failed 3 times: make: *** [test] Error 2'],
    ]),
    'tool-call-loop': make('tool-call-loop', [
      ['`cat notes.txt` called 6 times with the same arguments: todo'],
      ['`cat notes.txt` called 5 times with the same arguments: todo'],
    ]),
    'missing-required-artifact': make('missing-required-artifact', [
      ['verifier: test_output_exists: output.txt not found'],
      ['verifier: test_report_created: report.json missing'],
    ]),
    'premature-completion': make('premature-completion', [
      ['called finish at step 7, but the verifier failed: tests failed'],
      ['called finish at step 4, but the verifier failed'],
    ]),
    'lost-environment-state': make('lost-environment-state', [
      ['directory build set up at step 2, missing at step 3: bash: line 1: cd: build: No such file or directory'],
      ['variable DATA_DIR set up at step 1, missing at step 2: DATA_DIR: unbound variable'],
    ]),
    'missing-dependency': make('missing-dependency', [
      [
        'bash: jq: command not found',
        [
          {
            step: 2,
            tool: 'shell',
            command: 'jq .name data.json',
            exitCode: 127,
            output: 'bash: jq: command not found',
          },
        ],
      ],
      ["ModuleNotFoundError: No module named 'numpy'"],
    ]),
    'exploration-without-implementation': make('exploration-without-implementation', [
      ['14 of 15 calls only read or navigated, 0 changed files; reads: cat, ls, grep'],
      ['20 of 20 calls only read or navigated, 0 changed files; reads: ls'],
    ]),
    'budget-exhaustion': make('budget-exhaustion', [['run ended: turn_budget'], ['run ended: max_turns reached']]),
    'malformed-tool-call': make('malformed-tool-call', [
      ['the arguments of write_file are not a valid JSON object ("{path: out.txt")'],
      ['shell needs a non-empty string argument "command" (2 malformed calls)'],
    ]),
  };
}

/** A brief without a log: the default harness, the given clusters, and earlier proposals. */
export function briefOf(
  clusters: readonly ClusterCard[],
  earlierProposals: readonly EarlierProposal[] = [],
  spec: HarnessSpec = defaultHarnessSpec,
  baseVersionId = defaultVersionId(),
): ProposalBrief {
  return {
    baseVersionId,
    spec,
    surfaces: editableSurfaces,
    splitsShown: ['held-in'],
    clusters,
    earlierProposals,
  };
}
