import { type ClusterCard, commandHead } from '../analytics/ranking.js';
import { canonicalJson } from '../harness/canonical-json.js';
import {
  type Budgets,
  type HarnessSpec,
  type InstructionSections,
  isDeepEqual,
  MiddlewareEntry,
  type Rule,
} from '../harness/index.js';
import type { ProposalBrief } from './brief.js';
import { type CandidateDraft, checkCandidates, type Risk, selectDiverse } from './candidate.js';
import type { ProposeOptions, ProposeResult, Proposer } from './proposer.js';

/**
 * The offline proposer: maps each mined mechanism to harness edits, with parameters read from the cluster's evidence
 * (how often a command failed, how long a loop or an exploration ran, which programs were missing, which budget ran
 * out). Each mechanism has alternatives on different surfaces (built-in middleware, a declarative rule, instruction
 * text, a budget), so a round can offer diverse candidates; the order is fixed, so the same brief gives the same
 * candidates. An alternative the harness already has is skipped.
 */

/** What the evidence of a cluster says, in numbers and names. */
export interface EvidenceFacts {
  /** Times a command failed (`\`make test\` failed 3 times`), per excerpt. */
  failureCounts: number[];
  /** Times a call was repeated with the same arguments, per excerpt. */
  repeatCounts: number[];
  /** Read-only calls in a row before the run ended, per excerpt. */
  readCounts: number[];
  /** The programs the failing commands ran, most frequent first (`make test`). */
  commands: string[];
  /** The exact calls the detectors quote (first line of the command), most frequent first (`cat notes.txt`). */
  calls: string[];
  /** Programs reported as not found (`jq: command not found`). */
  missingPrograms: string[];
  /** Python modules reported missing. */
  missingModules: string[];
  /** What ran out, when runs ended on a budget. */
  exhausted: ('turns' | 'time' | 'tokens')[];
  /** Whole evidence text, for patterns a rule may match. */
  text: string;
}

/** Reads the numbers and names a proposal needs from a cluster's evidence excerpts and cited tool calls. */
export function readEvidence(card: ClusterCard): EvidenceFacts {
  const facts: EvidenceFacts = {
    failureCounts: [],
    repeatCounts: [],
    readCounts: [],
    commands: [],
    calls: [],
    missingPrograms: [],
    missingModules: [],
    exhausted: [],
    text: '',
  };
  const commandCounts = new Map<string, number>();
  const callCounts = new Map<string, number>();
  const texts: string[] = [];
  for (const evidence of card.evidence) {
    const excerpt = evidence.excerpt;
    texts.push(excerpt, ...evidence.calls.map((call) => `${call.command ?? ''}\n${call.output}`));
    const failed = /failed (\d+) times/.exec(excerpt);
    if (failed) facts.failureCounts.push(Number(failed[1]));
    const repeated = /called (\d+) times with the same arguments/.exec(excerpt);
    if (repeated) facts.repeatCounts.push(Number(repeated[1]));
    const reads = /(\d+) of (\d+) calls only read or navigated/.exec(excerpt);
    if (reads) facts.readCounts.push(Number(reads[1]));
    const quoted = /^`([^`]+)`/.exec(excerpt);
    if (quoted?.[1]) callCounts.set(quoted[1], (callCounts.get(quoted[1]) ?? 0) + 1);
    const commands = [
      ...(quoted?.[1] ? [quoted[1]] : []),
      ...evidence.calls.flatMap((call) => (call.command && (call.exitCode ?? 0) !== 0 ? [call.command] : [])),
    ];
    for (const command of new Set(commands.map((text) => commandHead(text)).filter(Boolean) as string[]))
      commandCounts.set(command, (commandCounts.get(command) ?? 0) + 1);
    if (/run ended/i.test(excerpt) || evidence.mechanism === 'budget-exhaustion') {
      const reason = excerpt.toLowerCase();
      if (/token|context/.test(reason)) facts.exhausted.push('tokens');
      else if (/time|wall|timeout/.test(reason)) facts.exhausted.push('time');
      else facts.exhausted.push('turns');
    }
  }
  facts.text = texts.join('\n');
  for (const match of facts.text.matchAll(/(?:^|[\s:])([\w.+-]{1,40}): (?:command )?not found/gm)) {
    const program = match[1]!;
    if (!['bash', 'sh', 'zsh', 'line'].includes(program) && !facts.missingPrograms.includes(program))
      facts.missingPrograms.push(program);
  }
  for (const match of facts.text.matchAll(/No module named '?([\w.]{1,60})'?/g)) {
    const module = match[1]!.split('.')[0]!;
    if (!facts.missingModules.includes(module)) facts.missingModules.push(module);
  }
  facts.commands = byFrequency(commandCounts);
  facts.calls = byFrequency(callCounts);
  return facts;
}

function byFrequency(counts: ReadonlyMap<string, number>): string[] {
  return [...counts.entries()]
    .sort((left, right) => right[1] - left[1] || (left[0] < right[0] ? -1 : 1))
    .map(([text]) => text);
}

/**
 * A pattern for a program and its subcommand anywhere in a command: `make test` matches `cd src && make test -j4` but
 * not `pytest`. Words are matched whole (no letter, digit, dot or dash on either side).
 */
export function programPattern(head: string): string {
  return head
    .split(/\s+/)
    .filter(Boolean)
    .map((word) => `(?<![\\w.-])${escapeRegex(word)}(?![\\w.-])`)
    .join('.*');
}

/** A pattern for one exact call (its first line, any spacing), or undefined when it would be too long for a rule. */
export function exactCallPattern(call: string): string | undefined {
  if (/[{}"]/.test(call)) return undefined;
  const pattern = `^\\s*${call.trim().split(/\s+/).map(escapeRegex).join('\\s+')}`;
  return pattern.length <= 200 ? pattern : undefined;
}

/** One way to address a mechanism: a draft edit, or undefined when the harness has it already. */
type Alternative = (context: AlternativeContext) => CandidateDraft | undefined;

interface AlternativeContext {
  readonly spec: HarnessSpec;
  readonly card: ClusterCard;
  readonly mechanism: string;
  readonly facts: EvidenceFacts;
}

const clamp = (value: number, minimum: number, maximum: number) => Math.min(maximum, Math.max(minimum, value));

function smallest(values: readonly number[]): number | undefined {
  return values.length > 0 ? Math.min(...values) : undefined;
}

function listNames(names: readonly string[], shown = 4): string {
  const quoted = names.slice(0, shown).map((name) => `\`${name}\``);
  return names.length > shown ? `${quoted.join(', ')} and ${names.length - shown} more` : quoted.join(', ');
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
}

/** What a fix must not break: the cluster's passing runs, and the behaviour named. */
function preserveText(card: ClusterCard, behaviour: string): string {
  const passing = card.preserve.passingRunCount;
  const runs =
    passing === 0
      ? 'No passing run shares these tasks'
      : `The ${passing} passing run${passing === 1 ? '' : 's'} on these tasks (${card.preserve.passingRuns
          .slice(0, 2)
          .map((run) => run.runId)
          .join(', ')}${passing > 2 ? ', …' : ''}) must still pass`;
  return `${runs}; ${behaviour}`;
}

function rationaleText(card: ClusterCard, mechanism: string, detail: string): string {
  const example = card.evidence.find((evidence) => evidence.mechanism === mechanism) ?? card.evidence[0];
  const cited = example
    ? ` E.g. run ${example.runId}${example.steps.length > 0 ? ` step ${example.steps[0]}` : ''}: ${shorten(example.excerpt, 160)}`
    : '';
  return `Cluster #${card.rank} "${card.label}": ${card.runCount} failed runs across ${card.taskCount} tasks.${cited} ${detail}`.trim();
}

function shorten(text: string, length: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > length ? `${flat.slice(0, length - 1)}…` : flat;
}

interface EditSpec {
  readonly surface: string;
  readonly patch: unknown[];
}

/** Appends a paragraph to an instruction section, unless the section says it already. */
function appendInstruction(spec: HarnessSpec, section: keyof InstructionSections, text: string): EditSpec | undefined {
  const current = spec.instructions[section];
  if (current.includes(text)) return undefined;
  const value = current.trim() === '' ? text : `${current.trimEnd()}\n${text}`;
  return { surface: `/instructions/${section}`, patch: [{ op: 'replace', path: `/instructions/${section}`, value }] };
}

/** Adds a built-in middleware, or sets its parameters when it is on with others; undefined when it is on as asked. */
function setMiddleware(spec: HarnessSpec, entry: MiddlewareEntry): EditSpec | undefined {
  const wanted = MiddlewareEntry.parse(entry);
  const index = spec.middleware.findIndex((existing) => existing.name === wanted.name);
  if (index < 0) return { surface: '/middleware', patch: [{ op: 'add', path: '/middleware/-', value: wanted }] };
  if (isDeepEqual(spec.middleware[index], wanted)) return undefined;
  return { surface: '/middleware', patch: [{ op: 'replace', path: `/middleware/${index}`, value: wanted }] };
}

function addRule(spec: HarnessSpec, rule: Rule): EditSpec | undefined {
  if (spec.rules.some((existing) => existing.id === rule.id)) return undefined;
  return { surface: '/rules', patch: [{ op: 'add', path: '/rules/-', value: rule }] };
}

function setBudget<K extends keyof Budgets>(spec: HarnessSpec, key: K, value: Budgets[K]): EditSpec | undefined {
  if (spec.budgets[key] === value) return undefined;
  return { surface: `/budgets/${key}`, patch: [{ op: 'replace', path: `/budgets/${key}`, value }] };
}

function draft(
  context: AlternativeContext,
  edit: EditSpec | undefined,
  fields: { expectedEffect: string; preserve: string; risk: Risk; detail: string },
): CandidateDraft | undefined {
  if (!edit) return undefined;
  return {
    clusterId: context.card.clusterId,
    mechanism: context.mechanism,
    surface: edit.surface,
    patch: edit.patch,
    expectedEffect: fields.expectedEffect,
    preserve: preserveText(context.card, fields.preserve),
    risk: fields.risk,
    rationale: rationaleText(context.card, context.mechanism, fields.detail),
  };
}

const ARTIFACT_CHECK: Alternative = (context) =>
  draft(context, setMiddleware(context.spec, { name: 'artifact-check', fromInstruction: true }), {
    expectedEffect:
      'A finish while a required output file is missing is refused, naming the missing files, so the agent writes them before it stops.',
    preserve: 'runs that wrote every required file finish as before (the check passes silently).',
    risk: 'low',
    detail: 'The verifier reported required outputs missing after the agent declared success.',
  });

const FAILURE_GUARD: Alternative = (context) => {
  const least = smallest(context.facts.failureCounts);
  const maxFailures = least === undefined ? 2 : clamp(least - 1, 1, 3);
  const example = context.facts.commands[0];
  return draft(context, setMiddleware(context.spec, { name: 'failed-command-guard', maxFailures }), {
    expectedEffect: `A shell command that already failed ${maxFailures} time${maxFailures === 1 ? '' : 's'} is blocked with its last error quoted, so the agent fixes the cause${example ? ` (e.g. of \`${example}\`)` : ''} instead of retrying until the budget runs out.`,
    preserve: 'a command that fails, is fixed, and is then run with a change still runs.',
    risk: 'low',
    detail: `The shortest streak of identical failures in the evidence was ${least ?? 'not stated'}, so the guard acts at ${maxFailures}.`,
  });
};

const LOOP_BREAKER: Alternative = (context) => {
  const least = smallest(context.facts.repeatCounts);
  const maxRepeats = least === undefined ? 3 : clamp(least - 1, 2, 5);
  return draft(context, setMiddleware(context.spec, { name: 'loop-breaker', maxRepeats, action: 'block' }), {
    expectedEffect: `The ${maxRepeats}th identical call in a short window is blocked with a note that repeating it will not change the result, so the agent tries something else.`,
    preserve: 'legitimate re-runs with changed arguments (after an edit, a different flag) are unaffected.',
    risk: 'medium',
    detail: `The shortest loop in the evidence repeated a call ${least ?? 'several'} times.`,
  });
};

const EXPLORATION_NUDGE: Alternative = (context) => {
  const least = smallest(context.facts.readCounts);
  const maxReadOnlyActions = least === undefined ? 8 : clamp(Math.floor(least / 2), 3, 12);
  return draft(context, setMiddleware(context.spec, { name: 'exploration-nudge', maxReadOnlyActions }), {
    expectedEffect: `After ${maxReadOnlyActions} read-only actions in a row the agent is told to start writing the files the task asks for.`,
    preserve: 'runs that inspect a few files and then implement are not interrupted.',
    risk: 'low',
    detail: `The shortest all-reading run in the evidence made ${least ?? 'many'} read-only calls; the nudge comes at half of that.`,
  });
};

const DEPENDENCY_PRECHECK: Alternative = (context) =>
  draft(context, setMiddleware(context.spec, { name: 'dependency-precheck', action: 'warn' }), {
    expectedEffect: `Before a shell command runs, programs it needs that are not installed${context.facts.missingPrograms.length > 0 ? ` (as ${listNames(context.facts.missingPrograms)} were)` : ''} are named, so the agent switches to an installed tool at once.`,
    preserve: 'commands whose programs are installed run unchanged (the check is silent).',
    risk: 'low',
    detail: 'Runs failed on programs or modules that are not installed and cannot be downloaded.',
  });

const RECOVERY_HINTS: Alternative = (context) =>
  draft(context, setMiddleware(context.spec, { name: 'error-recovery-hints' }), {
    expectedEffect:
      'After a known kind of failure (missing program or module, lost shell state, malformed arguments, timeout) the agent reads a one-line hint on how to recover.',
    preserve: 'successful commands get no hints; at most 3 hints of a kind per run.',
    risk: 'low',
    detail: 'The failures in this cluster are of kinds the hints name.',
  });

const PERSISTENT_SHELL: Alternative = (context) =>
  draft(context, setMiddleware(context.spec, { name: 'persistent-shell' }), {
    expectedEffect:
      'All shell calls share one shell, so `cd`, `export` and `source` from one call hold in the next, and commands stop failing for lost state.',
    preserve:
      'runs that chain their commands already behave the same; a command that hangs the shell is still stopped by the command timeout.',
    risk: 'medium',
    detail: 'The agent set up a directory, variable or environment and lost it in the next call.',
  });

const REPEATED_FAILURE_INSTRUCTION: Alternative = (context) =>
  draft(
    context,
    appendInstruction(
      context.spec,
      'recovery',
      'When a command fails, read its error and change something (fix the cause, use another command, supply what is missing) before running it again; never run an unchanged failing command more than twice.',
    ),
    {
      expectedEffect:
        'The agent treats a failure as information: it stops retrying the same command and changes its approach after at most two identical failures.',
      preserve: 'retries after a real change (an edit, an installed input) go on as before.',
      risk: 'low',
      detail: `Failing commands were retried unchanged${context.facts.commands[0] ? ` (e.g. \`${context.facts.commands[0]}\`)` : ''}.`,
    },
  );

const REPEATED_FAILURE_RULE: Alternative = (context) => {
  const command = context.facts.commands[0];
  const rule: Rule = {
    id: command ? `failed-again-${slug(command)}` : 'failed-again',
    description: 'The same failing command run again: point at the error instead of another retry.',
    trigger: {
      on: 'tool-result',
      tool: '^shell$',
      ...(command ? { command: programPattern(command) } : {}),
      exitCode: 'nonzero',
      count: 2,
      maxFirings: 3,
    },
    action: {
      type: 'inject',
      message: `${command ? `\`${command}\`` : 'This command'} has failed again. Read the error above and fix its cause before running it another time.`,
    },
  };
  return draft(context, addRule(context.spec, rule), {
    expectedEffect: `From the second failure of ${command ? `\`${command}\`` : 'a command'} on, the agent reads a note to fix the cause instead of retrying.`,
    preserve: 'the first failure and every success pass without a note.',
    risk: 'low',
    detail: 'A rule matching the command that failed over and over in the evidence.',
  });
};

const LOOP_INSTRUCTION: Alternative = (context) =>
  draft(
    context,
    appendInstruction(
      context.spec,
      'recovery',
      'If a call gives the same result twice, do not make it again: the result will not change. Try a different command, read a different file, or change the input.',
    ),
    {
      expectedEffect: 'The agent breaks out of loops of identical calls by itself after the second identical result.',
      preserve: 'polling with a purpose (waiting for a build) still works when the result changes.',
      risk: 'low',
      detail: 'Runs repeated the same call with the same arguments many times.',
    },
  );

const LOOP_RULE: Alternative = (context) => {
  const call = context.facts.calls[0];
  const exact = call === undefined ? undefined : exactCallPattern(call);
  const head = context.facts.commands[0];
  const pattern = exact ?? (head ? programPattern(head) : undefined);
  const command = exact ? call : head;
  const least = smallest(context.facts.repeatCounts);
  const count = least === undefined ? 3 : clamp(least - 1, 2, 5);
  const rule: Rule = {
    id: command ? `repeated-call-${slug(command)}` : 'repeated-call',
    description: 'A call the agent keeps repeating: say that repeating it changes nothing.',
    trigger: {
      on: 'tool-call',
      ...(pattern ? { command: pattern } : { tool: '.' }),
      exitCode: 'any',
      count,
      maxFirings: 3,
    },
    action: {
      type: 'inject',
      message: `You have run ${command ? `\`${command}\`` : 'this'} ${count} times; the result will not change. Try a different approach.`,
    },
  };
  return draft(context, addRule(context.spec, rule), {
    expectedEffect: `From the ${count}th time the looped call is made, the agent is told that repeating it changes nothing.`,
    preserve: 'the first calls run without notes.',
    risk: 'low',
    detail: 'A rule matching the call repeated in the evidence.',
  });
};

const VERIFY_OUTPUTS_INSTRUCTION: Alternative = (context) =>
  draft(
    context,
    appendInstruction(
      context.spec,
      'verification',
      'Before calling finish, check that every file the task asks for exists at the exact path named (`ls -l PATH`) and holds what was asked; create any that is missing.',
    ),
    {
      expectedEffect: 'The agent lists the required outputs before finishing and writes any it forgot.',
      preserve: 'runs that already wrote their outputs only spend one more command.',
      risk: 'low',
      detail: 'The verifier found required outputs missing.',
    },
  );

const VERIFY_RESULT_INSTRUCTION: Alternative = (context) =>
  draft(
    context,
    appendInstruction(
      context.spec,
      'verification',
      'Do not call finish until you have checked the result: run the tests or the program on an example, and compare what it produces with what the instruction asks for.',
    ),
    {
      expectedEffect: 'The agent tests its result before it declares success, and fixes what the test shows.',
      preserve: 'runs that already verified finish as before.',
      risk: 'low',
      detail: 'The agent declared the task done while the verifier still failed.',
    },
  );

const CONFIRM_BEFORE_FINISH_RULE: Alternative = (context) =>
  draft(
    context,
    addRule(context.spec, {
      id: 'confirm-before-finish',
      description: 'Ask once for a check of the outputs before the run ends.',
      trigger: { on: 'finish', exitCode: 'any', count: 1, maxFirings: 1 },
      action: {
        type: 'refuse-finish',
        message:
          'Before finishing, confirm the result: list every file the task requires (`ls -l PATH`) and run the check the instruction implies. Then call finish again.',
      },
    }),
    {
      expectedEffect:
        'The first finish of a run is refused once with a request to check the outputs, so a premature finish gets a second look.',
      preserve: 'a run that already checked loses one turn and then finishes as before.',
      risk: 'medium',
      detail: 'Runs ended with a success claim the verifier did not confirm.',
    },
  );

const CHAIN_COMMANDS_INSTRUCTION: Alternative = (context) =>
  draft(
    context,
    appendInstruction(
      context.spec,
      'execution',
      'Each shell call starts a fresh shell in the workspace: a `cd`, `export` or `source` from an earlier call is gone. Chain dependent commands with && in one call (`cd build && make`), or use paths relative to the workspace.',
    ),
    {
      expectedEffect:
        'The agent keeps set-up and use in one command, so directories and variables are where it expects them.',
      preserve: 'single self-contained commands are unaffected.',
      risk: 'low',
      detail: 'State set up in one shell call was missing in the next.',
    },
  );

const SHELL_DESCRIPTION: Alternative = (context) => {
  const note = 'State does not carry over: chain cd, export and source with && in the same command.';
  const current = context.spec.tools.shell.description;
  if (current.includes(note)) return undefined;
  return draft(
    context,
    {
      surface: '/tools/shell/description',
      patch: [{ op: 'replace', path: '/tools/shell/description', value: `${current.trimEnd()} ${note}` }],
    },
    {
      expectedEffect:
        'The shell tool itself tells the agent that state is lost between calls, where it reads it at every call.',
      preserve: 'the tool behaves the same; only its description changes.',
      risk: 'low',
      detail: 'State set up in one shell call was missing in the next.',
    },
  );
};

const MISSING_DEPENDENCY_RULE: Alternative = (context) => {
  const { missingPrograms, missingModules, text } = context.facts;
  const patterns: string[] = [];
  if (missingPrograms.length > 0 || /command not found/.test(text)) patterns.push('command not found');
  if (missingModules.length > 0 || /No module named/.test(text)) patterns.push('No module named');
  if (patterns.length === 0) patterns.push('command not found', 'No module named');
  const seen = [...missingPrograms, ...missingModules];
  const rule: Rule = {
    id: `missing-${patterns.length > 1 ? 'dependency' : patterns[0] === 'command not found' ? 'program' : 'module'}-hint`,
    description: 'A program or module is not installed: there is no network, so name an alternative.',
    trigger: {
      on: 'tool-result',
      tool: '^shell$',
      output: patterns.join('|'),
      exitCode: 'any',
      count: 1,
      maxFirings: 3,
    },
    action: {
      type: 'inject',
      message: `That is not installed and there is no network to install it. Check what exists with \`command -v NAME\` and use an installed alternative (python3 and its standard library can do most data work).${seen.length > 0 ? ` Earlier runs lost time on ${listNames(seen)}.` : ''}`,
    },
  };
  return draft(context, addRule(context.spec, rule), {
    expectedEffect: `When a command reports "${patterns.join('" or "')}", the agent reads that nothing can be installed and which way to go instead.`,
    preserve: 'outputs without these messages get no note.',
    risk: 'low',
    detail: `The evidence shows ${seen.length > 0 ? listNames(seen) : 'programs'} missing.`,
  });
};

const CHECK_TOOLS_INSTRUCTION: Alternative = (context) =>
  draft(
    context,
    appendInstruction(
      context.spec,
      'bootstrap',
      "Before relying on a program or library, check that it is installed (`command -v NAME`, `python3 -c 'import NAME'`). There is no network: use what is installed.",
    ),
    {
      expectedEffect:
        'The agent checks its tools first and plans with what is installed, instead of discovering missing ones mid-way.',
      preserve: 'runs whose tools are present spend one more command.',
      risk: 'low',
      detail: 'Runs failed on programs or modules that are not installed.',
    },
  );

const START_EARLY_INSTRUCTION: Alternative = (context) =>
  draft(
    context,
    appendInstruction(
      context.spec,
      'execution',
      'Do not explore for long: after a few commands to look around, write the files the task asks for, then test and refine them.',
    ),
    {
      expectedEffect: 'The agent moves from reading to writing early enough to finish within its budget.',
      preserve: 'tasks that need a careful look first still get a few read-only steps.',
      risk: 'low',
      detail: 'Runs spent almost all their calls reading and wrote nothing.',
    },
  );

const FEWER_STEPS_INSTRUCTION: Alternative = (context) =>
  draft(
    context,
    appendInstruction(
      context.spec,
      'execution',
      'Work in few, decisive steps: combine related commands in one call, write whole files with write_file instead of many small edits, and stop exploring once you know enough.',
    ),
    {
      expectedEffect: 'The agent uses fewer turns for the same work, so it finishes inside the budget.',
      preserve: 'runs that already finish in time are unaffected.',
      risk: 'low',
      detail: 'Runs ended on a budget before they finished.',
    },
  );

const RAISE_BUDGET: Alternative = (context) => {
  const counts = { turns: 0, time: 0, tokens: 0 };
  for (const kind of context.facts.exhausted) counts[kind] += 1;
  const kind = (['turns', 'time', 'tokens'] as const).reduce((best, next) =>
    counts[next] > counts[best] ? next : best,
  );
  const budgets = context.spec.budgets;
  const edit =
    kind === 'turns'
      ? setBudget(context.spec, 'maxTurns', Math.min(10_000, Math.ceil(budgets.maxTurns * 1.5)))
      : kind === 'time'
        ? setBudget(context.spec, 'wallTimeSec', Math.min(86_400, Math.ceil(budgets.wallTimeSec * 1.5)))
        : setBudget(context.spec, 'maxTokens', Math.min(1_000_000_000, Math.ceil(budgets.maxTokens * 1.5)));
  return draft(context, edit, {
    expectedEffect: `Runs get half as much ${kind === 'turns' ? 'turn budget' : kind === 'time' ? 'wall time' : 'token budget'} again, so work that was nearly done can finish.`,
    preserve: 'runs that finish early cost the same; only long runs cost more.',
    risk: 'medium',
    detail: `${counts[kind]} of the evidence runs ran out of ${kind}.`,
  });
};

const TOOL_ARGUMENTS_INSTRUCTION: Alternative = (context) =>
  draft(
    context,
    appendInstruction(
      context.spec,
      'recovery',
      'Call tools with exactly one JSON object of arguments holding the fields the tool describes. Put long file content in write_file rather than in a shell command.',
    ),
    {
      expectedEffect: 'Fewer tool calls fail to parse, and a failed one is resent in the right form.',
      preserve: 'well-formed calls are unaffected.',
      risk: 'low',
      detail: 'Tool calls arrived malformed and the run ended without progress.',
    },
  );

const MALFORMED_CALL_RULE: Alternative = (context) =>
  draft(
    context,
    addRule(context.spec, {
      id: 'malformed-arguments-hint',
      description: 'A tool call whose arguments could not be read: say how to send them.',
      trigger: {
        on: 'tool-result',
        output: 'not a valid JSON object|needs a (non-empty )?string argument',
        exitCode: 'any',
        count: 1,
        maxFirings: 3,
      },
      action: {
        type: 'inject',
        message:
          'Send the arguments again as one valid JSON object with the fields the tool describes (for write_file: path and content).',
      },
    }),
    {
      expectedEffect: 'After a malformed call the agent reads exactly how to resend it.',
      preserve: 'well-formed calls get no note.',
      risk: 'low',
      detail: 'Tool calls arrived malformed.',
    },
  );

/** The alternatives for each mechanism, most direct first. */
export const MECHANISM_ALTERNATIVES: Readonly<Record<string, readonly Alternative[]>> = {
  'repeated-failed-command': [FAILURE_GUARD, REPEATED_FAILURE_INSTRUCTION, REPEATED_FAILURE_RULE],
  'tool-call-loop': [LOOP_BREAKER, LOOP_INSTRUCTION, LOOP_RULE],
  'missing-required-artifact': [ARTIFACT_CHECK, VERIFY_OUTPUTS_INSTRUCTION, CONFIRM_BEFORE_FINISH_RULE],
  'premature-completion': [VERIFY_RESULT_INSTRUCTION, ARTIFACT_CHECK, CONFIRM_BEFORE_FINISH_RULE],
  'lost-environment-state': [PERSISTENT_SHELL, CHAIN_COMMANDS_INSTRUCTION, SHELL_DESCRIPTION, RECOVERY_HINTS],
  'missing-dependency': [DEPENDENCY_PRECHECK, MISSING_DEPENDENCY_RULE, CHECK_TOOLS_INSTRUCTION, RECOVERY_HINTS],
  'exploration-without-implementation': [EXPLORATION_NUDGE, START_EARLY_INSTRUCTION],
  'budget-exhaustion': [RAISE_BUDGET, EXPLORATION_NUDGE, FEWER_STEPS_INSTRUCTION],
  'malformed-tool-call': [RECOVERY_HINTS, TOOL_ARGUMENTS_INSTRUCTION, MALFORMED_CALL_RULE],
};

/** Every draft edit for a cluster: its mechanisms by frequency, each mechanism's alternatives in order. */
export function draftsForCluster(spec: HarnessSpec, card: ClusterCard): CandidateDraft[] {
  const facts = readEvidence(card);
  return card.mechanisms.flatMap(({ mechanism }) =>
    (MECHANISM_ALTERNATIVES[mechanism] ?? []).flatMap((alternative) => {
      const result = alternative({ spec, card, mechanism, facts });
      return result ? [result] : [];
    }),
  );
}

/** The rule-based proposer. */
export class RuleProposer implements Proposer {
  readonly name = 'rules';

  async propose(brief: ProposalBrief, options: ProposeOptions): Promise<ProposeResult> {
    const seen = new Set<string>();
    const drafts = brief.clusters.flatMap((card) =>
      draftsForCluster(brief.spec, card).filter((entry) => {
        // Two clusters with one mechanism suggest the same edit; it is one candidate, for the higher-ranked cluster.
        const key = canonicalJson(entry.patch);
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      }),
    );
    const { candidates, rejected } = checkCandidates(brief, drafts);
    return { candidates: selectDiverse(candidates, options.count), rejected };
  }
}
