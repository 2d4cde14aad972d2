import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { InputError, UserError } from '../../core/index.js';
import {
  diffJson,
  editableSurfaces,
  type HarnessVersion,
  listVersions,
  type PatchOperation,
  parseHarnessSpec,
  registerVersion,
  resolveVersion,
  valueAt,
} from '../../harness/index.js';
import { type GlobalOptions, withLog } from '../context.js';
import { formatTable, printJson } from '../output.js';

const RUNS_PER_VERSION = `
SELECT harness_version, count(*) AS runs, count(*) FILTER (WHERE outcome = 'passed') AS passed,
       count(*) FILTER (WHERE outcome = 'failed') AS failed
FROM runs WHERE harness_version IS NOT NULL GROUP BY harness_version`;

/** `selfharness harness …`: show, list, compare, export and import harness versions. */
export function registerHarness(program: Command, globals: () => GlobalOptions): void {
  const harness = program
    .command('harness')
    .description('Harness versions: show, log, diff, export, import (VERSION is `default` or a unique id prefix)');

  harness
    .command('show')
    .description('Print a harness version and its spec')
    .argument('[version]', '`default` or a version id (prefix)', 'default')
    .action(async (reference: string) => {
      const global = globals();
      const version = await withLog(global, (log) => resolveVersion(log, reference));
      if (global.json) printJson(version);
      else {
        console.log(describeVersion(version));
        console.log(JSON.stringify(version.spec, null, 2));
      }
    });

  harness
    .command('log')
    .description('List harness versions, oldest first, with their parents and the runs made with each')
    .action(async () => {
      const global = globals();
      const { versions, runs } = await withLog(global, async (log) => ({
        versions: await listVersions(log),
        runs: await log.query<{ harness_version: string; runs: bigint; passed: bigint; failed: bigint }>(
          RUNS_PER_VERSION,
        ),
      }));
      const rows = versions.map((version) => {
        const counts = runs.find((row) => row.harness_version === version.versionId);
        return {
          version: version.versionId,
          parent: version.parentId ?? null,
          created: version.createdAt ?? null,
          runs: Number(counts?.runs ?? 0),
          passed: Number(counts?.passed ?? 0),
          failed: Number(counts?.failed ?? 0),
          description: version.description ?? null,
        };
      });
      if (global.json) printJson(rows);
      else
        console.log(
          rows.length === 0
            ? 'No harness versions yet: `selfharness harness show default` registers the built-in one.'
            : formatTable(rows),
        );
    });

  harness
    .command('diff')
    .description('Show what changed from version A to version B, as JSON Patch operations')
    .argument('<a>', 'the earlier version')
    .argument('<b>', 'the later version')
    .action(async (first: string, second: string) => {
      const global = globals();
      const [from, to] = await withLog(global, async (log) => [
        await resolveVersion(log, first),
        await resolveVersion(log, second),
      ]);
      const patch = diffJson(from.spec, to.spec);
      if (global.json) printJson({ from: from.versionId, to: to.versionId, patch });
      else {
        console.log(`--- ${from.versionId}\n+++ ${to.versionId}`);
        console.log(
          patch.length === 0
            ? 'No differences.'
            : patch.map((operation) => formatOperation(operation, from.spec)).join('\n'),
        );
      }
    });

  harness
    .command('export')
    .description("Write a version's spec as JSON (to stdout, or a file)")
    .argument('<version>', '`default` or a version id (prefix)')
    .option('--out <file>', 'write to this file')
    .action(async (reference: string, options: { out?: string }) => {
      const global = globals();
      const version = await withLog(global, (log) => resolveVersion(log, reference));
      const text = `${JSON.stringify(version.spec, null, 2)}\n`;
      if (!options.out) {
        process.stdout.write(text);
        return;
      }
      const file = resolve(options.out);
      await writeFile(file, text);
      if (global.json) printJson({ versionId: version.versionId, file });
      else console.log(`Wrote harness version ${version.versionId} to ${file}`);
    });

  harness
    .command('import')
    .description('Register a spec file as a harness version')
    .argument('<file>', 'a JSON harness spec (as `harness export` writes)')
    .option('--parent <version>', 'the version it derives from (`default` or an id prefix)')
    .option('--description <text>', 'what changed and why')
    .action(async (path: string, options: { parent?: string; description?: string }) => {
      const global = globals();
      const spec = await readSpecFile(path);
      const result = await withLog(global, async (log) => {
        const parent = options.parent ? await resolveVersion(log, options.parent) : undefined;
        return registerVersion(log, spec, {
          ...(parent ? { parentId: parent.versionId } : {}),
          ...(options.description ? { description: options.description } : {}),
        });
      });
      const { version, created } = result;
      if (global.json) printJson({ versionId: version.versionId, parentId: version.parentId ?? null, created });
      else
        console.log(
          created
            ? `Registered harness version ${version.versionId}${version.parentId ? ` (parent ${version.parentId})` : ''}`
            : `Harness version ${version.versionId} is already registered (the same spec); nothing added`,
        );
    });

  harness
    .command('surfaces')
    .description('List the parts of the spec a proposer may change (JSON Pointer patterns)')
    .action(() => {
      const global = globals();
      if (global.json) printJson(editableSurfaces);
      else console.log(formatTable(editableSurfaces.map((surface) => ({ ...surface }))));
    });
}

async function readSpecFile(path: string): Promise<unknown> {
  const file = resolve(path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UserError(`Cannot read harness spec ${file}: ${(error as NodeJS.ErrnoException).code ?? error}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InputError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
  parseHarnessSpec(value, `harness spec ${file}`);
  return value;
}

function describeVersion(version: HarnessVersion): string {
  return [
    `version  ${version.versionId}`,
    `parent   ${version.parentId ?? '(none)'}`,
    ...(version.createdAt ? [`created  ${version.createdAt}`] : []),
    ...(version.description ? [`about    ${version.description}`] : []),
    '',
  ].join('\n');
}

function formatOperation(operation: PatchOperation, before: unknown): string {
  const show = (value: unknown) => JSON.stringify(value);
  switch (operation.op) {
    case 'add':
      return `+ ${operation.path}: ${show(operation.value)}`;
    case 'remove':
      return `- ${operation.path}`;
    case 'replace':
      return `~ ${operation.path}: ${show(valueAt(before, operation.path))} → ${show(operation.value)}`;
    default:
      return `  ${operation.op} ${operation.path}`;
  }
}
