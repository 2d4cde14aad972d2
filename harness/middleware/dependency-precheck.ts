import type { Middleware } from '../runtime/middleware.js';
import { commandPrograms } from './shell-words.js';

/**
 * Before a shell command runs, checks with `command -v` (in the same shell the command will use) that the programs
 * it calls exist, and warns (or blocks) naming the missing ones, so the agent switches to an installed tool instead
 * of reading a failure later. Programs found once are not checked again.
 */
export function dependencyPrecheck(parameters: { action: 'warn' | 'block' }): Middleware {
  const present = new Set<string>();
  return {
    name: 'dependency-precheck',
    async beforeToolCall(session, call) {
      if (call.command === undefined) return undefined;
      const programs = commandPrograms(call.command).filter((program) => !present.has(program));
      if (programs.length === 0) return undefined;
      const probe = `for program in ${programs.join(' ')}; do command -v "$program" >/dev/null 2>&1 || echo "missing:$program"; done`;
      const result = await session.shell(probe, { timeoutMs: 10_000, maxOutputBytes: 65_536 });
      const missing = [...result.output.matchAll(/^missing:(\S+)$/gm)].map((match) => match[1]!);
      for (const program of programs) if (!missing.includes(program)) present.add(program);
      if (missing.length === 0) return undefined;
      const message = `${missing.length > 1 ? 'these programs are' : 'this program is'} not installed: ${missing.join(', ')}. There is no network to install ${missing.length > 1 ? 'them' : 'it'}; use an installed alternative (check with \`command -v NAME\`).`;
      return parameters.action === 'block' ? { block: message } : { warn: message };
    },
  };
}
