/**
 * What the simulated model notices in the text it is shown. These are the fixed, generic reading rules of the test
 * double: each looks for wording any harness, middleware or tool might use (an exit code, "command not found", a
 * file reported missing, a warning about repeating, "is not installed", a nudge to stop exploring) and never for a
 * particular harness's phrasing. They read whole messages the way a model would, so a command's own output can
 * trigger them too. Pure functions of text.
 */

/** What one tool result says about the call it answers. */
export interface ToolResultReading {
  /** The call failed: a non-zero exit code, a program not found, a missing file, a time-out, a blocked call. */
  readonly failed: boolean;
  /** The exit code when the result states one. */
  readonly exitCode?: number;
  /** Programs the shell reported as `command not found`. */
  readonly programsNotFound: readonly string[];
  /** The tool could not read the call's arguments (they were not valid JSON). */
  readonly argumentsUnreadable: boolean;
}

/** Signals in any message (tool results and injected messages alike). */
export interface MessageSignals {
  /** Files reported as required but missing, or `[]` when a refusal or report names none; undefined: no such report. */
  readonly missingFiles?: readonly string[];
  /** A warning that the same call or command was repeated or is looping. */
  readonly repeatWarning: boolean;
  /** Programs a message says are not installed or not available. */
  readonly programsNotInstalled: readonly string[];
  /** A nudge to stop exploring and start making changes. */
  readonly explorationNudge: boolean;
  /** A message says some program is not installed without naming it (the name is in the shell's own error). */
  readonly unnamedProgramNotInstalled: boolean;
}

/** Kinds of advice in instructions (system prompt, tool descriptions, injected messages) the model may follow. */
export type InstructionKind =
  | 'verify-outputs'
  | 'self-contained-commands'
  | 'check-dependencies'
  | 'limit-exploration'
  | 'avoid-repetition';

const EXIT_CODE_PATTERNS = [
  /\bexit(?:[ _-]?code|[ _-]?status)?["']?\s*[:=]\s*(-?\d+)/i,
  /\bexited with (?:code|status) (-?\d+)/i,
  /\[exit(?: code| status)? (-?\d+)\]/i,
  /"exitCode"\s*:\s*(-?\d+|null)/,
];

/** Reads a tool result: did the call fail, and how. */
export function readToolResult(content: string): ToolResultReading {
  const programsNotFound = [
    ...new Set(
      [...content.matchAll(/(?:^|[\s:])([\w.+-]+): (?:command not found|not found)\s*$/gm)]
        .map((match) => match[1] ?? '')
        .filter((name) => name !== '' && !/^line$|^\d+$/.test(name)),
    ),
  ];
  const commandNotFound = /command not found/i.test(content) || programsNotFound.length > 0;
  const argumentsUnreadable =
    /(?:could not|couldn't|cannot|can't|failed to|unable to) (?:parse|read|decode)[^.\n]{0,40}(?:argument|JSON|call)|invalid JSON|not valid JSON|malformed (?:tool )?(?:call|arguments|JSON)/i.test(
      content,
    );
  let exitCode: number | undefined;
  for (const pattern of EXIT_CODE_PATTERNS) {
    const match = pattern.exec(content);
    if (match?.[1] !== undefined) {
      exitCode = match[1] === 'null' ? -1 : Number(match[1]);
      break;
    }
  }
  const timedOut = /\btimed out\b|\btimeout\b.*\bkilled\b/i.test(content);
  let failed: boolean;
  if (exitCode !== undefined) failed = exitCode !== 0 || commandNotFound || timedOut;
  else
    failed =
      commandNotFound ||
      timedOut ||
      argumentsUnreadable ||
      /No such file or directory|Traceback \(most recent call last\)|Permission denied|^\s*(?:error|Error|ERROR)\b|\bENOENT\b/m.test(
        content,
      ) ||
      /\b(?:blocked|not (?:been )?(?:run|executed)|was refused)\b/i.test(content);
  return {
    failed,
    ...(exitCode === undefined ? {} : { exitCode }),
    programsNotFound,
    argumentsUnreadable,
  };
}

/** Reads the signals in a message, whichever role carried it. */
export function readMessageSignals(content: string): MessageSignals {
  return {
    ...missingFilesIn(content),
    repeatWarning:
      /\b(?:repeat(?:ed|ing|s)?|identical|the same (?:command|call|tool call|arguments|action)|loop(?:ing|s)?|already (?:ran|run|tried|called|failed)|(?:failed|run|ran|called|made|issued|repeated) (?:\d+|two|three|several|many) times)\b/i.test(
        content,
      ),
    programsNotInstalled: programsNotInstalledIn(content),
    unnamedProgramNotInstalled:
      /\b(?:a|some|the) (?:program|command|tool|dependency) (?:is not|isn't|was not) (?:installed|available)\b/i.test(
        content,
      ),
    explorationNudge:
      /\b(?:stop (?:exploring|investigating|reading)|start (?:implementing|making changes|writing|working on the task|the implementation)|begin (?:implementing|making changes)|move on to (?:implementation|implementing|making changes)|without (?:making|changing) (?:any )?(?:changes|anything)|(?:explor|read-only|inspect)[^.\n]{0,80}\b(?:implement|make (?:a )?changes?|act now))/i.test(
        content,
      ),
  };
}

function missingFilesIn(content: string): { missingFiles?: readonly string[] } {
  const reportsMissing =
    /\b(?:missing|not (?:yet )?(?:been )?(?:created|written|produced)|does not exist|do not exist|doesn't exist|don't exist|absent)\b/i.test(
      content,
    ) &&
    /\b(?:required|expected|must|artifacts?|outputs?|deliverables?|the task (?:asks|requires|needs))\b/i.test(content);
  const refusesFinish =
    /\b(?:cannot|can't|can not|not allowed to|refus\w*|reject\w*|not yet) (?:to )?(?:finish|declare|be done|complete)|\bfinish\w* (?:was |is )?(?:refused|rejected|blocked)/i.test(
      content,
    );
  if (!reportsMissing && !refusesFinish) return {};
  return { missingFiles: reportsMissing ? pathsIn(content) : [] };
}

/** Relative paths a message names: with a folder (`out/report.txt`) or a file extension (`summary.csv`). */
export function pathsIn(content: string): string[] {
  const found = new Set<string>();
  for (const match of content.matchAll(
    /(?:^|[\s`'"(,:])((?:\.\/)?[\w.-]+(?:\/[\w.-]+)+|[\w-]+\.[A-Za-z][\w]{0,7})(?=$|[\s`'"),:;]|\.(?:\s|$))/gm,
  )) {
    const path = (match[1] ?? '').replace(/^\.\//, '').replace(/\.$/, '');
    if (path === '' || path.startsWith('/') || /^\d+(?:\.\d+)*$/.test(path) || /^(?:e\.g|i\.e|etc)$/i.test(path))
      continue;
    found.add(path);
  }
  return [...found];
}

function programsNotInstalledIn(content: string): string[] {
  const names = new Set<string>();
  const patterns = [
    /[`'"]?([\w.+-]+)[`'"]? (?:is not|isn't|was not|is no longer) (?:installed|available|present|on (?:the )?PATH)/gi,
    /\bnot installed: ((?:[`'"]?[\w.+-]+[`'"]?,\s*)*[`'"]?[\w.+-]+[`'"]?)/gi,
    /\b(?:missing|unavailable) (?:program|dependency|tool|command)s?:? [`'"]?([\w.+-]+)[`'"]?/gi,
    /\bno (?:program|command|executable) (?:named |called )?[`'"]?([\w.+-]+)[`'"]? (?:is )?(?:installed|available|found)/gi,
  ];
  for (const pattern of patterns) {
    for (const match of content.matchAll(pattern)) {
      for (const word of (match[1] ?? '').split(/,\s*/)) {
        const name = word.replace(/[`'"]/g, '').replace(/\.+$/, '');
        if (name !== '' && !/^(?:it|this|that|the|which|what|command|program|tool|file|and|or)$/i.test(name))
          names.add(name);
      }
    }
  }
  return [...names];
}

const INSTRUCTION_PATTERNS: Record<InstructionKind, RegExp> = {
  'verify-outputs':
    /\b(?:verify|check|confirm|make sure|ensure|test)\b[^.\n]{0,80}\b(?:exists?|created|written|outputs?|results?|required files?|artifacts?|deliverables?)\b|\bbefore (?:you )?(?:call(?:ing)? )?finish\w*[^.\n]{0,60}\b(?:check|verify|confirm|ensure|make sure)\b/i,
  'self-contained-commands':
    /\b(?:new|fresh|separate|its own|own) (?:shell|process|bash)\b|\b(?:state|environment|variables?|working directory|current directory|cd)\b[^.\n]{0,60}\b(?:not (?:persist|carry|kept|preserved|survive|shared)|(?:is|are) (?:lost|reset)|do(?:es)?n?'?t? (?:not )?(?:persist|carry over|survive))|\b(?:same|one|single) (?:command|call|shell call)\b[^.\n]{0,60}\b(?:cd|export|environment|state|variables?)\b|\b(?:cd|export|environment|state|variables?)\b[^.\n]{0,60}\b(?:same|one|single) (?:command|call|shell call)\b|\b(?:chain|combine)\b[^.\n]{0,40}(?:&&|commands)/i,
  'check-dependencies':
    /\bcommand -v\b|\bwhich\s+<|\bcheck (?:that|whether|if)\b[^.\n]{0,60}\b(?:installed|available|exists? on (?:the )?PATH)\b|\b(?:installed|available)\b[^.\n]{0,40}\bbefore (?:using|relying|you use)\b/i,
  'limit-exploration':
    /\b(?:don't|do not|avoid|never)\b[^.\n]{0,30}\b(?:over-?explor\w*|explor(?:e|ing) (?:too much|for long|endlessly|at length))|\b(?:a few|limited|brief(?:ly)?|quick(?:ly)?)\b[^.\n]{0,30}\b(?:looks?|explor\w*|inspect\w*)\b|\bstart (?:implementing|making changes|working)\b[^.\n]{0,30}\b(?:early|soon|quickly|promptly)\b/i,
  'avoid-repetition':
    /\b(?:don't|do not|never|avoid)\b[^.\n]{0,30}\b(?:repeat\w*|re-?run\w*|retry\w*)\b[^.\n]{0,50}\b(?:same|identical|fail\w*)\b/i,
};

/** The kinds of advice a text gives, by the fixed patterns above. */
export function readInstructions(content: string): InstructionKind[] {
  return (Object.keys(INSTRUCTION_PATTERNS) as InstructionKind[]).filter((kind) =>
    INSTRUCTION_PATTERNS[kind].test(content),
  );
}
