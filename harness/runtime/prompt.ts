import type { InstructionSections } from '../spec.js';

const headings: Record<Exclude<keyof InstructionSections, 'system'>, string> = {
  bootstrap: 'Getting started',
  execution: 'Doing the work',
  verification: 'Before you finish',
  recovery: 'When something fails',
};

/**
 * The system prompt: the system section, then each non-empty section under its heading, then where the workspace
 * is. The task's instruction follows as the first user message.
 */
export function buildSystemPrompt(instructions: InstructionSections, workspacePath: string): string {
  const parts = [instructions.system.trim()];
  for (const [key, heading] of Object.entries(headings) as [keyof typeof headings, string][]) {
    const text = instructions[key].trim();
    if (text !== '') parts.push(`## ${heading}\n${text}`);
  }
  parts.push(`The workspace is ${workspacePath}; it is the working directory of every shell command.`);
  return parts.filter((part) => part !== '').join('\n\n');
}
