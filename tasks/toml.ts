import { InputError } from '../core/index.js';

/**
 * The part of TOML that task files use: `[section]` tables, `key = value` pairs, basic and literal strings,
 * integers, floats, booleans, and arrays of those (which may span lines). Anything else is an error naming the file
 * and line, so a task author learns what to fix instead of getting a silently wrong value.
 */
export type TomlValue = string | number | boolean | TomlValue[];
export type TomlTable = { [key: string]: TomlValue | TomlTable };

export function parseToml(text: string, file: string): TomlTable {
  const root: TomlTable = {};
  let table = root;
  const lines = text.split(/\r?\n/);
  for (let index = 0; index < lines.length; index++) {
    const lineNumber = index + 1;
    const fail = (reason: string): never => {
      throw new InputError(`${file}:${lineNumber}: ${reason}`);
    };
    let line = stripComment(lines[index] ?? '').trim();
    if (line === '') continue;
    const section = /^\[([A-Za-z0-9_.-]+)\]$/.exec(line);
    if (section) {
      table = root;
      for (const part of section[1]!.split('.')) {
        const existing = table[part];
        if (existing !== undefined && (typeof existing !== 'object' || Array.isArray(existing))) {
          fail(`[${section[1]}] clashes with the key ${part}`);
        }
        if (existing === undefined) table[part] = {};
        table = table[part] as TomlTable;
      }
      continue;
    }
    const pair = /^([A-Za-z0-9_-]+)\s*=\s*(.*)$/.exec(line);
    if (!pair) fail(`expected \`[section]\` or \`key = value\`, found \`${line}\``);
    const key = pair![1]!;
    let valueText = pair![2]!;
    // An array may continue on the next lines until its brackets balance.
    while (valueText.startsWith('[') && !isBalanced(valueText) && index + 1 < lines.length) {
      index++;
      line = stripComment(lines[index] ?? '').trim();
      valueText += ` ${line}`;
    }
    if (key in table) fail(`key ${key} is defined twice`);
    const parsed = parseValue(valueText.trim());
    if (parsed.rest.trim() !== '') fail(`unexpected text after the value of ${key}: \`${parsed.rest.trim()}\``);
    if (parsed.error) fail(`${key}: ${parsed.error}`);
    table[key] = parsed.value as TomlValue;
  }
  return root;
}

/** Removes a `#` comment, leaving `#` inside strings alone. */
function stripComment(line: string): string {
  let quote: string | undefined;
  for (let position = 0; position < line.length; position++) {
    const character = line[position];
    if (quote) {
      if (character === '\\' && quote === '"') position++;
      else if (character === quote) quote = undefined;
    } else if (character === '"' || character === "'") {
      quote = character;
    } else if (character === '#') {
      return line.slice(0, position);
    }
  }
  return line;
}

function isBalanced(text: string): boolean {
  let depth = 0;
  let quote: string | undefined;
  for (let position = 0; position < text.length; position++) {
    const character = text[position];
    if (quote) {
      if (character === '\\' && quote === '"') position++;
      else if (character === quote) quote = undefined;
    } else if (character === '"' || character === "'") quote = character;
    else if (character === '[') depth++;
    else if (character === ']') depth--;
  }
  return depth === 0;
}

interface Parsed {
  value?: TomlValue;
  rest: string;
  error?: string;
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '"': '"', '\\': '\\', b: '\b', f: '\f' };

function parseValue(text: string): Parsed {
  if (text.startsWith('"')) {
    let value = '';
    for (let position = 1; position < text.length; position++) {
      const character = text[position]!;
      if (character === '"') return { value, rest: text.slice(position + 1) };
      if (character === '\\') {
        const next = text[++position] ?? '';
        if (next === 'u') {
          value += String.fromCharCode(Number.parseInt(text.slice(position + 1, position + 5), 16));
          position += 4;
        } else if (next in ESCAPES) value += ESCAPES[next];
        else return { rest: '', error: `unknown escape \\${next}` };
      } else value += character;
    }
    return { rest: '', error: 'unterminated string' };
  }
  if (text.startsWith("'")) {
    const end = text.indexOf("'", 1);
    if (end < 0) return { rest: '', error: 'unterminated string' };
    return { value: text.slice(1, end), rest: text.slice(end + 1) };
  }
  if (text.startsWith('[')) {
    const values: TomlValue[] = [];
    let rest = text.slice(1).trim();
    while (!rest.startsWith(']')) {
      if (rest === '') return { rest: '', error: 'unterminated array' };
      const item = parseValue(rest);
      if (item.error) return item;
      values.push(item.value as TomlValue);
      rest = item.rest.trim();
      if (rest.startsWith(',')) rest = rest.slice(1).trim();
      else if (!rest.startsWith(']')) return { rest: '', error: 'expected `,` or `]` in an array' };
    }
    return { value: values, rest: rest.slice(1) };
  }
  const scalar = /^(true|false|[+-]?\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text);
  if (!scalar)
    return { rest: '', error: `unsupported value \`${text}\` (use a quoted string, a number, true/false or an array)` };
  const token = scalar[1]!;
  const value = token === 'true' ? true : token === 'false' ? false : Number(token.replaceAll('_', ''));
  return { value, rest: text.slice(token.length) };
}
