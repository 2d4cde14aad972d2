import type { Middleware } from '../runtime/middleware.js';

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escape sequences start with ESC.
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[@-Z\\-_]/g;

export interface NormalizeOptions {
  readonly stripAnsi: boolean;
  readonly collapseProgress: boolean;
  readonly maxChars: number;
}

/**
 * Makes command output readable for a model: removes terminal colour codes, keeps only the last state of lines
 * redrawn with carriage returns (progress bars) and folds runs of identical lines, and cuts the middle of long
 * output, keeping its head and its tail (where errors usually are).
 */
export function normalizeOutput(text: string, options: NormalizeOptions): string {
  let result = options.stripAnsi ? text.replace(ANSI, '') : text;
  if (options.collapseProgress) {
    const lines = result.split('\n').map((line) => {
      const parts = line.split('\r').filter((part) => part !== '');
      return parts[parts.length - 1] ?? '';
    });
    const folded: string[] = [];
    let index = 0;
    while (index < lines.length) {
      let end = index + 1;
      while (end < lines.length && lines[end] === lines[index]) end += 1;
      folded.push(lines[index]!);
      if (end - index >= 3) folded.push(`[the line above repeats ${end - index - 1} more times]`);
      else for (let repeat = index + 1; repeat < end; repeat += 1) folded.push(lines[repeat]!);
      index = end;
    }
    result = folded.join('\n');
  }
  if (result.length > options.maxChars) {
    const head = Math.floor(options.maxChars * 0.4);
    const tail = options.maxChars - head;
    result = `${result.slice(0, head)}\n[… ${result.length - head - tail} characters cut from the middle …]\n${result.slice(-tail)}`;
  }
  return result;
}

/** Normalises every tool output before the model (and the other middleware) see it. */
export function outputNormalizer(parameters: NormalizeOptions): Middleware {
  return {
    name: 'output-normalizer',
    async afterToolCall(_session, _call, outcome) {
      const output = normalizeOutput(outcome.output, parameters);
      return output === outcome.output ? undefined : { ...outcome, output };
    },
  };
}
