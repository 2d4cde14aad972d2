/**
 * Reads a task's reference solution (`solution/solve.sh`) the way the simulated model plans its work: the script is
 * cut into steps at blank lines (never inside a heredoc, a loop, an `if` or a function body), and each step is
 * described by what a reader of the script can see: its intent (its first comment), whether it only reads, and which
 * of its lines change the shell's state (`cd`, `export`, `source`, assignments, functions) and so are lost when the
 * next command runs in a fresh process. Pure text processing: no I/O.
 */

/** One step of a reference solution: a command block a model could send as one shell tool call. */
export interface SolutionStep {
  /** Position among the script's steps, from 0. */
  readonly index: number;
  /** The command as a model would send it: comment lines and shell-option lines (`set -e`) left out. */
  readonly command: string;
  /** The step's first comment, without `#`, when it has one. */
  readonly intent?: string;
  /** Only inspects (ls, cat, grep … without writing files or changing the shell's state). */
  readonly readOnly: boolean;
  /** Top-level commands of this step that change the shell's state, in order, each runnable on its own. */
  readonly stateEntries: readonly string[];
}

const READ_ONLY_PROGRAMS = new Set([
  'ls',
  'cat',
  'head',
  'tail',
  'grep',
  'egrep',
  'fgrep',
  'wc',
  'pwd',
  'file',
  'stat',
  'echo',
  'printf',
  'tree',
  'du',
  'df',
  'which',
  'command',
  'type',
  'env',
  'printenv',
  'less',
  'more',
  'sort',
  'uniq',
  'cut',
  'tr',
  'diff',
  'cmp',
  'md5sum',
  'sha256sum',
  'id',
  'whoami',
  'uname',
  'date',
  'true',
  'nl',
  'column',
  'basename',
  'dirname',
  'realpath',
  'readlink',
  'test',
  '[',
  'find',
  'git',
]);
const READ_ONLY_GIT = new Set(['status', 'log', 'diff', 'show', 'branch', 'remote', 'rev-parse', 'ls-files']);
const STATE_PROGRAMS = new Set(['cd', 'pushd', 'popd', 'export', 'source', '.', 'unset', 'alias', 'umask', 'declare']);

/** Splits a solution script into steps. A script without commands gives an empty list. */
export function splitSolutionSteps(script: string): SolutionStep[] {
  const lines = script.replace(/\r\n?/g, '\n').split('\n');
  if (lines[0]?.startsWith('#!')) lines.shift();
  const blocks: ScriptLine[][] = [];
  let current: ScriptLine[] = [];
  let heredocDelimiters: string[] = [];
  let depth = 0;
  let continued = false;
  for (const text of lines) {
    if (heredocDelimiters.length > 0) {
      current.push({ text, topLevel: false, depth });
      if (text.trim() === heredocDelimiters[0]) heredocDelimiters = heredocDelimiters.slice(1);
      continue;
    }
    if (text.trim() === '' && depth <= 0 && !continued) {
      if (current.length > 0) blocks.push(current);
      current = [];
      depth = 0;
      continue;
    }
    current.push({ text, topLevel: true, depth: continued ? Math.max(depth, 1) : depth });
    const code = stripQuotesAndComment(text);
    depth += blockDepthChange(code);
    heredocDelimiters = heredocsOpenedBy(text);
    continued = /\\\s*$/.test(text) || /(?:&&|\|\||\|)\s*$/.test(code);
  }
  if (current.length > 0) blocks.push(current);

  const steps: SolutionStep[] = [];
  for (const block of blocks) {
    const step = describeBlock(block, steps.length);
    if (step) steps.push(step);
  }
  return steps;
}

interface ScriptLine {
  readonly text: string;
  /** False for heredoc bodies, which are data, not commands. */
  readonly topLevel: boolean;
  /** Nesting (loops, ifs, braces) before the line; 0 is the script's top level. */
  readonly depth: number;
}

function describeBlock(block: readonly ScriptLine[], index: number): SolutionStep | undefined {
  let intent: string | undefined;
  const kept: ScriptLine[] = [];
  for (const line of block) {
    const trimmed = line.text.trim();
    if (line.topLevel && line.depth === 0 && trimmed.startsWith('#')) {
      if (intent === undefined && trimmed.replace(/^#+\s*/, '') !== '') intent = trimmed.replace(/^#+\s*/, '');
      continue;
    }
    if (line.topLevel && line.depth === 0 && /^set\s+[-+][a-zA-Z]+(?:\s+[-+]?[a-zA-Z]+)*\s*$/.test(trimmed)) continue;
    kept.push(line);
  }
  if (kept.every((line) => line.text.trim() === '')) return undefined;
  const command = kept.map((line) => line.text).join('\n');
  const logical = logicalLines(kept);
  const hasHeredoc = kept.some((line) => !line.topLevel);
  return {
    index,
    command,
    ...(intent === undefined ? {} : { intent }),
    readOnly: !hasHeredoc && logical.every((line) => isReadOnlyLine(line.text)),
    stateEntries: stateEntriesOf(logical),
  };
}

/** Top-level lines with `\` continuations joined; heredoc bodies left out. */
function logicalLines(lines: readonly ScriptLine[]): ScriptLine[] {
  const result: ScriptLine[] = [];
  let pending: ScriptLine | undefined;
  for (const line of lines) {
    if (!line.topLevel) continue;
    const joined: ScriptLine = pending
      ? { text: `${pending.text.replace(/\\\s*$/, '')} ${line.text.trim()}`, topLevel: true, depth: pending.depth }
      : line;
    if (/\\\s*$/.test(line.text)) {
      pending = joined;
      continue;
    }
    pending = undefined;
    if (joined.text.trim() !== '') result.push(joined);
  }
  if (pending) result.push(pending);
  return result;
}

function isReadOnlyLine(line: string): boolean {
  const code = stripQuotesAndComment(line);
  const withoutHarmless = code
    .replace(/\d*>>?\s*\/dev\/null/g, '')
    .replace(/&>\s*\/dev\/null/g, '')
    .replace(/\d*>&\d/g, '');
  if (withoutHarmless.includes('>')) return false;
  for (const segment of splitTopLevel(code, true)) {
    const words = segment.trim().split(/\s+/).filter(Boolean);
    const program = words[0];
    if (program === undefined) continue;
    if (!READ_ONLY_PROGRAMS.has(program)) return false;
    if (program === 'git' && !READ_ONLY_GIT.has(words[1] ?? '')) return false;
    if (program === 'find' && words.some((word) => /^-(?:delete|exec|execdir|ok|fprint)/.test(word))) return false;
    if (program === 'tee') return false;
  }
  return true;
}

function stateEntriesOf(lines: readonly ScriptLine[]): string[] {
  const entries: string[] = [];
  let functionLines: string[] | undefined;
  let functionDepth = 0;
  for (const line of lines) {
    if (functionLines) {
      functionLines.push(line.text);
      functionDepth += blockDepthChange(stripQuotesAndComment(line.text));
      if (functionDepth <= 0) {
        entries.push(functionLines.join('\n'));
        functionLines = undefined;
      }
      continue;
    }
    if (line.depth !== 0) continue;
    const trimmed = line.text.trim();
    if (/^(?:function\s+[A-Za-z_][\w-]*|[A-Za-z_][\w-]*\s*\(\s*\))/.test(trimmed)) {
      functionDepth = blockDepthChange(stripQuotesAndComment(trimmed));
      if (functionDepth <= 0 && trimmed.includes('}')) entries.push(trimmed);
      else functionLines = [trimmed];
      continue;
    }
    if (trimmed.startsWith('(')) continue;
    for (const segment of splitTopLevel(line.text, false)) {
      if (isStateSegment(segment)) entries.push(segment);
    }
  }
  if (functionLines) entries.push(functionLines.join('\n'));
  return entries;
}

function isStateSegment(segment: string): boolean {
  const code = stripQuotesAndComment(segment).trim();
  const program = code.split(/\s+/)[0] ?? '';
  if (STATE_PROGRAMS.has(program)) return true;
  // `NAME=value` alone sets a shell variable; `NAME=value command` only sets it for that one command.
  return /^[A-Za-z_]\w*=\S*$/.test(code);
}

/**
 * Splits a line at top-level `&&`, `||`, `;` (and `|` when asked), outside quotes and `$( … )`. The pieces keep their
 * original text, trimmed.
 */
export function splitTopLevel(line: string, atPipes: boolean): string[] {
  const segments: string[] = [];
  let start = 0;
  let quote: '"' | "'" | undefined;
  let parentheses = 0;
  for (let position = 0; position < line.length; position += 1) {
    const character = line[position];
    if (quote) {
      if (character === '\\' && quote === '"') position += 1;
      else if (character === quote) quote = undefined;
      continue;
    }
    if (character === '\\') {
      position += 1;
      continue;
    }
    if (character === '"' || character === "'") {
      quote = character;
      continue;
    }
    if (character === '#' && (position === 0 || /\s/.test(line[position - 1] ?? ''))) break;
    if (character === '(') parentheses += 1;
    if (character === ')') parentheses = Math.max(0, parentheses - 1);
    if (parentheses > 0) continue;
    const pair = line.slice(position, position + 2);
    if (pair === '&&' || pair === '||') {
      segments.push(line.slice(start, position));
      start = position + 2;
      position += 1;
    } else if (character === ';' || (atPipes && character === '|')) {
      segments.push(line.slice(start, position));
      start = position + 1;
    }
  }
  const end = line.slice(start);
  const commentAt = findCommentStart(end);
  segments.push(commentAt === -1 ? end : end.slice(0, commentAt));
  return segments.map((segment) => segment.trim()).filter((segment) => segment !== '');
}

function findCommentStart(text: string): number {
  let quote: string | undefined;
  for (let position = 0; position < text.length; position += 1) {
    const character = text[position];
    if (quote) {
      if (character === quote) quote = undefined;
      continue;
    }
    if (character === '"' || character === "'") quote = character;
    else if (character === '#' && (position === 0 || /\s/.test(text[position - 1] ?? ''))) return position;
  }
  return -1;
}

/** The line with quoted text emptied and any trailing comment removed, for looking at its structure. */
function stripQuotesAndComment(line: string): string {
  let result = '';
  let quote: string | undefined;
  for (let position = 0; position < line.length; position += 1) {
    const character = line[position] ?? '';
    if (quote) {
      if (character === '\\' && quote === '"') position += 1;
      else if (character === quote) {
        quote = undefined;
        result += character;
      }
      continue;
    }
    if (character === '"' || character === "'") {
      quote = character;
      result += character;
      continue;
    }
    if (character === '#' && (position === 0 || /\s/.test(line[position - 1] ?? ''))) break;
    result += character;
  }
  return result;
}

/** How much a line opens (if, case, do, `{`) or closes (fi, esac, done, `}`) compound commands. */
function blockDepthChange(code: string): number {
  let change = 0;
  for (const word of code.split(/[\s;&|()]+/)) {
    if (word === 'if' || word === 'case' || word === 'do' || word === '{') change += 1;
    else if (word === 'fi' || word === 'esac' || word === 'done' || word === '}') change -= 1;
  }
  return change;
}

/** Heredoc delimiters a line opens (`<<EOF`, `<<-'EOF'`, `<< "END"`), in order; here-strings (`<<<`) are not. */
function heredocsOpenedBy(line: string): string[] {
  const delimiters: string[] = [];
  for (const match of line.matchAll(/(?<!<)<<-?\s*(['"]?)([A-Za-z_][\w.-]*)\1/g)) {
    if (match[2]) delimiters.push(match[2]);
  }
  return delimiters;
}

/** Whether a step's command names a workspace path (the full relative path, or its file name as a whole word). */
export function stepMentionsPath(step: SolutionStep, path: string): boolean {
  const normalized = path.replace(/^\.\//, '');
  if (step.command.includes(normalized)) return true;
  const name = normalized.split('/').pop() ?? normalized;
  if (name === '') return false;
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(?:^|[\\s/'"=<>])${escaped}(?=$|[\\s'";|&)<>])`, 'm').test(step.command);
}
