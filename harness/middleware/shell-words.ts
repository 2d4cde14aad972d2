/**
 * A rough reading of a bash command: the programs it runs. Quoted text and here-document bodies are left out, so
 * `awk '{print $1; exit}'` names `awk` alone. Enough for warnings and nudges; never used to decide what may run.
 */

const KEYWORDS = new Set([
  'if',
  'then',
  'else',
  'elif',
  'fi',
  'for',
  'while',
  'until',
  'do',
  'done',
  'case',
  'esac',
  'in',
  'function',
  'select',
  'time',
  '!',
  '{',
  '}',
  '[[',
  ']]',
  'sudo',
  'env',
  'nohup',
  'exec',
  'xargs',
  'nice',
  'timeout',
  'then',
]);

/** Shell builtins: always present, so never missing. */
export const BUILTINS = new Set([
  'cd',
  'export',
  'source',
  '.',
  'echo',
  'printf',
  'test',
  '[',
  'read',
  'set',
  'unset',
  'alias',
  'local',
  'return',
  'exit',
  'true',
  'false',
  'eval',
  'shift',
  'trap',
  'wait',
  'pushd',
  'popd',
  'dirs',
  'type',
  'command',
  'hash',
  'declare',
  'typeset',
  'let',
  'umask',
  'ulimit',
  'break',
  'continue',
  'builtin',
  'jobs',
  'fg',
  'bg',
  'kill',
  'readonly',
  'shopt',
  'getopts',
  'mapfile',
  'readarray',
  'history',
  'pwd',
  ':',
]);

function stripHereDocuments(command: string): string {
  const lines = command.split('\n');
  const kept: string[] = [];
  let terminator: string | undefined;
  for (const line of lines) {
    if (terminator !== undefined) {
      if (line.trim() === terminator) terminator = undefined;
      continue;
    }
    kept.push(line);
    const match = /<<-?\s*(['"]?)([A-Za-z_][A-Za-z0-9_]*)\1/.exec(line);
    if (match) terminator = match[2];
  }
  return kept.join('\n');
}

/** The programs a command runs (first words of its simple commands), without builtins and keywords. */
export function commandPrograms(command: string): string[] {
  const unquoted = stripHereDocuments(command)
    .replace(/'[^']*'/g, ' _ ')
    .replace(/"(?:[^"\\]|\\.)*"/g, ' _ ');
  const functions = new Set(
    [...unquoted.matchAll(/(?:^|[\s;&|(])(?:function\s+)?([A-Za-z_][A-Za-z0-9_-]*)\s*\(\s*\)/g)].map(
      (match) => match[1],
    ),
  );
  const programs: string[] = [];
  for (const segment of unquoted.split(/\n|;|&&|\|\||\||&|\(|\)|`|\$\(/)) {
    const words = segment.trim().split(/\s+/).filter(Boolean);
    if (['for', 'select', 'case'].includes(words[0] ?? '')) continue;
    let index = 0;
    while (index < words.length) {
      const word = words[index]!;
      if (KEYWORDS.has(word) || /^[A-Za-z_][A-Za-z0-9_]*=/.test(word) || /^[0-9]*[<>]/.test(word)) index += 1;
      else break;
    }
    const first = words[index];
    if (first === undefined || first.startsWith('#')) continue;
    if (BUILTINS.has(first) || functions.has(first)) continue;
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/.test(first)) continue;
    if (!programs.includes(first)) programs.push(first);
  }
  return programs;
}

/** Whether the command writes a file through a redirection (`>`, `>>`, `tee`), other than to /dev/null or a descriptor. */
export function hasOutputRedirection(command: string): boolean {
  const unquoted = command.replace(/'[^']*'/g, '').replace(/"(?:[^"\\]|\\.)*"/g, '');
  return /(^|[^0-9&<>])>{1,2}\s*(?!&|\/dev\/null)\S/.test(unquoted) || /\btee\b/.test(unquoted);
}
