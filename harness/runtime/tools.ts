import { lstat, mkdir, readdir, readFile, realpath, stat, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { ToolDefinition, Workspace } from '../contracts.js';
import type { HarnessSpec, ToolName, ToolSettings } from '../spec.js';
import type { ToolOutcome } from './middleware.js';

/**
 * The agent's tools: their definitions as the model sees them, and the file tools, which act on the workspace's
 * host folder and refuse any path that leads outside it (`..`, absolute paths elsewhere, symbolic links pointing out).
 */

const pathProperty = {
  type: 'string',
  description: 'a path relative to the workspace (or absolute under the workspace folder)',
};

const parameters: Record<ToolName, Record<string, unknown>> = {
  shell: {
    type: 'object',
    properties: { command: { type: 'string', description: 'the bash command to run' } },
    required: ['command'],
  },
  read_file: { type: 'object', properties: { path: pathProperty }, required: ['path'] },
  write_file: {
    type: 'object',
    properties: { path: pathProperty, content: { type: 'string', description: 'the full new content' } },
    required: ['path', 'content'],
  },
  edit_file: {
    type: 'object',
    properties: {
      path: pathProperty,
      old_text: { type: 'string', description: 'text that occurs exactly once in the file' },
      new_text: { type: 'string', description: 'its replacement' },
    },
    required: ['path', 'old_text', 'new_text'],
  },
  list_directory: {
    type: 'object',
    properties: { path: { ...pathProperty, description: 'the folder (default: the workspace)' } },
  },
  finish: {
    type: 'object',
    properties: { summary: { type: 'string', description: 'what was done' } },
  },
};

/** The enabled tools of a spec as the model sees them. */
export function toolDefinitions(spec: HarnessSpec, only?: readonly ToolName[]): ToolDefinition[] {
  return (Object.entries(spec.tools) as [ToolName, ToolSettings][])
    .filter(([name, settings]) => settings.enabled && (only === undefined || only.includes(name)))
    .map(([name, settings]) => ({ name, description: settings.description, parameters: parameters[name] }));
}

/** A failure the model caused (a bad path, a missing argument): it reads the message and can correct itself. */
export class ToolInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ToolInputError';
  }
}

/** Reads a required string argument, or says which one is missing. */
export function stringArgument(args: Readonly<Record<string, unknown>>, name: string, tool: string): string {
  const value = args[name];
  if (typeof value !== 'string') throw new ToolInputError(`${tool} needs a string argument "${name}"`);
  return value;
}

/**
 * Maps a path the agent gave to a host path inside the workspace, or refuses it. Relative paths are taken from the
 * workspace; absolute paths must lie under the workspace as the agent sees it (`agentPath`) or on the host. Symbolic
 * links are followed as far as they exist, and the real path must stay inside the workspace.
 */
export async function resolveWorkspacePath(workspace: Workspace, requested: string): Promise<string> {
  if (requested.includes('\0')) throw new ToolInputError('the path contains a NUL character');
  const root = resolve(workspace.hostPath);
  let candidate: string;
  if (isAbsolute(requested)) {
    const agentRoot = resolve(workspace.agentPath);
    if (requested === agentRoot || requested.startsWith(`${agentRoot}/`))
      candidate = join(root, relative(agentRoot, resolve(requested)));
    else if (resolve(requested) === root || resolve(requested).startsWith(`${root}${sep}`))
      candidate = resolve(requested);
    else throw new ToolInputError(`${requested} is outside the workspace (${workspace.agentPath})`);
  } else {
    candidate = resolve(root, requested);
  }
  if (!isInside(root, candidate)) throw new ToolInputError(`${requested} leads outside the workspace`);
  const realRoot = await realpath(root);
  const real = await realExistingPrefix(candidate);
  if (!isInside(realRoot, real))
    throw new ToolInputError(`${requested} leads outside the workspace through a symbolic link`);
  return candidate;
}

function isInside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : `${root}${sep}`);
}

/** The real path of `path`, or of its nearest existing ancestor joined with the rest; dangling links are refused. */
async function realExistingPrefix(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const status = await lstat(path).catch(() => undefined);
  if (status?.isSymbolicLink()) throw new ToolInputError(`${path} is a symbolic link to nothing; remove it first`);
  const parent = dirname(path);
  if (parent === path) return path;
  return join(await realExistingPrefix(parent), path.slice(parent.length + 1));
}

const ok = (output: string): ToolOutcome => ({ output, notes: [] });
export const failed = (error: string): ToolOutcome => ({ output: `Error: ${error}`, error, notes: [] });

/** Runs a file tool. Expected failures (missing file, bad path, ambiguous edit) come back as failed outcomes. */
export async function runFileTool(
  name: Exclude<ToolName, 'shell' | 'finish'>,
  args: Readonly<Record<string, unknown>>,
  workspace: Workspace,
  spec: HarnessSpec,
): Promise<ToolOutcome> {
  try {
    switch (name) {
      case 'read_file':
        return await readTool(args, workspace, spec.tools.read_file.maxBytes ?? 100_000);
      case 'write_file':
        return await writeTool(args, workspace, spec.tools.write_file.maxBytes ?? 1_000_000);
      case 'edit_file':
        return await editTool(args, workspace);
      case 'list_directory':
        return await listTool(args, workspace, spec.tools.list_directory.maxEntries ?? 500);
    }
  } catch (error) {
    if (error instanceof ToolInputError) return failed(error.message);
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return failed(`${String(args.path ?? '')}: no such file or directory`);
    if (code === 'EISDIR') return failed(`${String(args.path ?? '')} is a directory`);
    if (code === 'ENOTDIR') return failed(`${String(args.path ?? '')}: a part of the path is not a directory`);
    if (code === 'EACCES') return failed(`${String(args.path ?? '')}: permission denied`);
    throw error;
  }
}

async function readTool(args: Readonly<Record<string, unknown>>, workspace: Workspace, maxBytes: number) {
  const path = await resolveWorkspacePath(workspace, stringArgument(args, 'path', 'read_file'));
  const content = await readFile(path);
  if (content.includes(0)) return failed(`${String(args.path)} is a binary file (${content.length} bytes)`);
  if (content.length <= maxBytes) return ok(content.toString('utf8'));
  return ok(
    `${content.subarray(0, maxBytes).toString('utf8')}\n[file cut at ${maxBytes} of ${content.length} bytes; use shell tools such as sed -n to read the rest]`,
  );
}

async function writeTool(args: Readonly<Record<string, unknown>>, workspace: Workspace, maxBytes: number) {
  const requested = stringArgument(args, 'path', 'write_file');
  const content = stringArgument(args, 'content', 'write_file');
  const bytes = Buffer.byteLength(content);
  if (bytes > maxBytes) return failed(`content is ${bytes} bytes; write_file takes at most ${maxBytes}`);
  const path = await resolveWorkspacePath(workspace, requested);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, content);
  return ok(`Wrote ${bytes} bytes to ${requested}`);
}

async function editTool(args: Readonly<Record<string, unknown>>, workspace: Workspace) {
  const requested = stringArgument(args, 'path', 'edit_file');
  const oldText = stringArgument(args, 'old_text', 'edit_file');
  const newText = stringArgument(args, 'new_text', 'edit_file');
  if (oldText === '') return failed('old_text is empty: give the exact text to replace');
  const path = await resolveWorkspacePath(workspace, requested);
  const content = await readFile(path, 'utf8');
  const occurrences = content.split(oldText).length - 1;
  if (occurrences === 0)
    return failed(`old_text was not found in ${requested}; read the file and copy the text exactly`);
  if (occurrences > 1)
    return failed(
      `old_text occurs ${occurrences} times in ${requested}; include more surrounding text to make it unique`,
    );
  const index = content.indexOf(oldText);
  await writeFile(path, content.slice(0, index) + newText + content.slice(index + oldText.length));
  return ok(`Replaced 1 occurrence in ${requested}`);
}

async function listTool(args: Readonly<Record<string, unknown>>, workspace: Workspace, maxEntries: number) {
  const requested = typeof args.path === 'string' && args.path !== '' ? args.path : '.';
  const path = await resolveWorkspacePath(workspace, requested);
  if (!(await stat(path)).isDirectory()) return failed(`${requested} is not a directory`);
  const entries = (await readdir(path, { withFileTypes: true }))
    .map((entry) => (entry.isDirectory() ? `${entry.name}/` : entry.isSymbolicLink() ? `${entry.name}@` : entry.name))
    .sort();
  if (entries.length === 0) return ok(`${requested} is empty`);
  const shown = entries.slice(0, maxEntries);
  const rest = entries.length - shown.length;
  return ok(`${shown.join('\n')}${rest > 0 ? `\n[${rest} more entries not shown]` : ''}`);
}
