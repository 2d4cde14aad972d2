import { z } from 'zod';
import type { ClusterCard } from '../analytics/ranking.js';
import type { MiddlewareEntry } from '../harness/index.js';
import type { ProposalBrief } from './brief.js';
import { MAX_CHANGED_CHARACTERS, MAX_PATCH_OPERATIONS } from './candidate.js';

/**
 * The brief as a prompt for a model, and the shape of the answer. Pure and bounded: evidence is cut to short excerpts
 * and only the latest earlier proposals are listed, so the prompt stays a few thousand tokens whatever the log holds.
 */

/** Bumped whenever the prompt changes in a way that could change answers. */
export const PROPOSAL_PROMPT_VERSION = 'proposal-v1';

/**
 * The answer: a list of candidates. Each item is checked on its own afterwards (a bad item is rejected with its reason
 * while the others are kept), so the list's items are left unchecked here.
 */
export const ProposalReply = z.object({ candidates: z.array(z.unknown()).max(20) });
export type ProposalReply = z.infer<typeof ProposalReply>;

const MIDDLEWARE_GUIDE: Record<MiddlewareEntry['name'], string> = {
  'persistent-shell': 'one shell for all calls: cd, export, source and functions survive between calls. No parameters.',
  'loop-breaker':
    'maxRepeats (2-50, default 3), action (block|warn): the same call with the same arguments for the n-th time is blocked or warned.',
  'failed-command-guard':
    'maxFailures (1-50, default 2): a shell command that failed n times is blocked, quoting its error.',
  'artifact-check':
    "fromInstruction (boolean, default true): refuses finish while the task's required files (and paths the instruction names in backticks) are missing.",
  'dependency-precheck':
    'action (warn|block): checks with `command -v` that the programs of a command exist before it runs.',
  'exploration-nudge':
    'maxReadOnlyActions (1-200, default 8): after n read-only actions in a row, tells the agent to start writing.',
  'error-recovery-hints':
    'a short hint after known failures (missing program or module, lost shell state, timeout, permissions, syntax). No parameters.',
  'output-normalizer':
    'stripAnsi, collapseProgress (booleans), maxChars (200-1000000, default 6000): cleans and shortens tool output.',
};

const SYSTEM = `You improve the harness an AI agent runs in: its instructions, tools' descriptions, middleware, declarative rules and budgets. You are shown the agent's recurring failures (mined from its verified failed runs), the passing runs a change must not break, the current harness spec as JSON, the surfaces you may edit, and earlier proposals with their outcomes.

Propose small, targeted edits, each a JSON Patch (RFC 6902) on the harness spec that fixes one weakness cluster:
- Each candidate edits exactly one surface (one instruction section, the middleware list, the rules list, one budget, one tool description, or the sub-agents), with at most ${MAX_PATCH_OPERATIONS} operations and at most ${MAX_CHANGED_CHARACTERS} changed characters.
- To change an instruction section, "replace" it with its current text plus your addition. To add middleware or a rule, "add" at "/middleware/-" or "/rules/-".
- Prefer general fixes over task-specific ones: the edit will be tested on tasks you have not seen.
- Spread candidates over different clusters and surfaces. Never repeat an edit that was rejected or screened out.
- Proposing nothing is a valid answer when no edit is likely to help.

Answer with one JSON object and nothing else:
{"candidates": [{"clusterId": "<id from the brief>", "mechanism": "<mechanism id>", "surface": "<JSON Pointer of the surface, e.g. /middleware or /instructions/recovery>", "patch": [{"op": "add", "path": "/middleware/-", "value": {"name": "loop-breaker", "maxRepeats": 3, "action": "block"}}], "expectedEffect": "<the behaviour change you expect>", "preserve": "<the behaviour that must not change>", "risk": "low|medium|high", "rationale": "<why, citing the evidence>"}]}`;

const RULES_GUIDE = `Rules (a list at /rules) are data: {"id": "lower-case-id", "description": "…", "trigger": {"on": "tool-call|tool-result|finish", "tool": "<regex on the tool name>", "command": "<regex on the shell command>", "output": "<regex on the output, tool-result only>", "exitCode": "zero|nonzero|any (tool-result only)", "count": <act from the n-th match>, "maxFirings": <at most n times per run>}, "action": {"type": "inject", "message": "…"} | {"type": "block", "reason": "…"} (tool-call only) | {"type": "check", "command": "…"} | {"type": "refuse-finish", "message": "…"} (finish only)}. Patterns are at most 200 characters, without nested quantifiers.`;

function shorten(text: string, length: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > length ? `${flat.slice(0, length - 1)}…` : flat;
}

function renderCluster(card: ClusterCard): string {
  const lines = [
    `### Cluster ${card.clusterId} (rank ${card.rank}): ${card.label}`,
    `criticality ${card.criticality}; ${card.failureCount} failures in ${card.runCount} runs across ${card.taskCount} tasks; models ${card.models.join(', ')}`,
    `mechanisms: ${card.mechanisms.map((entry) => `${entry.mechanism} (${entry.failures})`).join(', ')}`,
    'evidence:',
  ];
  for (const evidence of card.evidence.slice(0, 4)) {
    lines.push(
      `- run ${evidence.runId}, task ${evidence.task}, ${evidence.mechanism}${evidence.steps.length > 0 ? ` at steps ${evidence.steps.slice(0, 5).join(', ')}` : ''}: ${shorten(evidence.excerpt, 300)}`,
    );
    if (evidence.terminalCause) lines.push(`  diagnosed cause: ${shorten(evidence.terminalCause, 200)}`);
    for (const call of evidence.calls.slice(0, 2)) {
      const exit = call.exitCode === null ? '' : ` (exit ${call.exitCode})`;
      lines.push(`  $ ${shorten(call.command ?? call.tool, 160)}${exit}: ${shorten(call.output, 200)}`);
    }
  }
  lines.push(
    card.preserve.passingRunCount === 0
      ? 'preserve: no passing runs on these tasks'
      : `preserve: ${card.preserve.passingRunCount} passing runs on these tasks (${card.preserve.passingRuns
          .slice(0, 5)
          .map((run) => run.runId)
          .join(', ')})`,
  );
  return lines.join('\n');
}

/** The system and user messages for one round, asking for at most `count` candidates. */
export function renderBriefPrompt(brief: ProposalBrief, count: number): { system: string; user: string } {
  const sections = [
    `Propose at most ${count} candidate edits to harness version ${brief.baseVersionId}.`,
    '## Weakness clusters (best first)',
    brief.clusters.length > 0 ? brief.clusters.map(renderCluster).join('\n\n') : '(no recurring weakness was found)',
    '## Current harness spec',
    JSON.stringify(brief.spec),
    '## Editable surfaces (JSON Pointers; * is one segment)',
    brief.surfaces.map((surface) => `- ${surface.path}: ${surface.description}`).join('\n'),
    '## Built-in middleware (entries of /middleware: {"name": …, parameters})',
    Object.entries(MIDDLEWARE_GUIDE)
      .map(([name, guide]) => `- ${name}: ${guide}`)
      .join('\n'),
    '## Declarative rules',
    RULES_GUIDE,
    '## Earlier proposals and their outcomes (latest 20)',
    brief.earlierProposals.length > 0
      ? brief.earlierProposals
          .slice(-20)
          .map(
            (proposal) =>
              `- ${proposal.proposalId} on ${proposal.baseVersionId}, ${proposal.surface}, ${proposal.status}${proposal.reasons.length > 0 ? ` (${shorten(proposal.reasons.join('; '), 200)})` : ''}: ${shorten(JSON.stringify(proposal.patch), 300)}`,
          )
          .join('\n')
      : '(none)',
  ];
  return { system: SYSTEM, user: sections.join('\n\n') };
}
