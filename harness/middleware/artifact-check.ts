import { existsSync, statSync } from 'node:fs';
import { isAbsolute, join, normalize } from 'node:path';
import type { Middleware } from '../runtime/middleware.js';

/**
 * Refuses `finish` while a required output file is missing, naming the files, so an agent that declares success
 * before writing its result gets another chance. Required files are the task's declared artifacts and, when
 * `fromInstruction`, the workspace paths the instruction names in backticks (`out/report.txt`). The runtime caps
 * refusals per run (`budgets.maxFinishRefusals`), so a path named only in passing cannot trap the agent.
 */
export function artifactCheck(parameters: { fromInstruction: boolean }): Middleware {
  return {
    name: 'artifact-check',
    async beforeFinish(session) {
      const required = new Set(session.task.requiredArtifacts ?? []);
      if (parameters.fromInstruction)
        for (const path of instructionPaths(session.task.instruction, session.workspace.agentPath)) required.add(path);
      const missing = [...required].filter((path) => !artifactExists(session.workspace.hostPath, path));
      if (missing.length === 0) return undefined;
      return {
        refuse: `required file${missing.length > 1 ? 's are' : ' is'} missing: ${missing.join(', ')}. Create ${missing.length > 1 ? 'them' : 'it'} in the workspace, then call finish again.`,
      };
    },
  };
}

/** Paths the instruction names in backticks that look like workspace files or folders (not placeholders). */
export function instructionPaths(instruction: string, agentPath: string): string[] {
  const paths: string[] = [];
  for (const match of instruction.matchAll(/`([^`\n]+)`/g)) {
    let path = (match[1] ?? '').trim();
    if (path.startsWith(`${agentPath}/`)) path = path.slice(agentPath.length + 1);
    if (isAbsolute(path) || path.startsWith('~') || path.startsWith('-')) continue;
    if (/[\s*?[\]{}$<>|;&'"=]/.test(path)) continue;
    // Placeholders such as `backups/NAME.tar.gz` or `DD/MM/YYYY` name no file.
    if (/(^|[^A-Za-z])[A-Z]{2,}([^A-Za-z]|$)/.test(path)) continue;
    const looksLikeFile = /\/[^/]|\.[A-Za-z0-9]{1,8}$/.test(path) || path.endsWith('/');
    if (!looksLikeFile || normalize(path).startsWith('..')) continue;
    if (!paths.includes(path)) paths.push(path);
  }
  return paths;
}

function artifactExists(root: string, path: string): boolean {
  const full = join(root, path);
  if (!existsSync(full)) return false;
  return path.endsWith('/') ? statSync(full).isDirectory() : true;
}
