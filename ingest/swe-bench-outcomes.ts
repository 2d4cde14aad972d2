import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { type Adapter, eventItem, type ParseItem, type ParseOptions, rejectItem, type SourceUnit } from './adapter.js';
import { decodeUtf8, stringifyRaw } from './atif.js';
import { parseJson } from './json-text.js';

const FORMAT = 'swe-bench';
const FILE_NAME = 'eval_results.json';

/** A flat `{ "instance id": true | false }` object: the first entry (or `{}`) is enough to tell from a file's head. */
const FLAT_BOOLEAN_OBJECT = /^\s*\{\s*(?:\}|"(?:[^"\\]|\\.)*"\s*:\s*(?:true|false)\s*[,}])/;

/**
 * Outcomes without trajectories, as SWE-bench-style harnesses publish them (`eval_results.json`, one boolean per
 * instance). Each entry becomes a run with no steps, a `run-start` and a `run-end`, so that it still counts in
 * outcome statistics. The run folder names the model (`gpt-4o-paper` → `gpt-4o`; `--model` overrides) and the
 * nearest `swe-bench*` folder above it names the dataset (`--dataset` overrides).
 */
export const sweBenchOutcomesAdapter: Adapter = {
  format: FORMAT,
  description: 'SWE-bench-style outcomes only: eval_results.json, {instance_id: true|false}',
  claimsFile(file, head) {
    return basename(file) === FILE_NAME && FLAT_BOOLEAN_OBJECT.test(head);
  },
  parse(unit: SourceUnit, options: ParseOptions): AsyncIterable<ParseItem> {
    return parseEvalResults(unit.path, options);
  },
};

/**
 * The model a SWE-bench Pro run folder names. Its published runs append `-paper` (the paper's runs) or a date such
 * as `-10132025` (the leaderboard's runs) to the model; both mark the run, not the model, and are dropped.
 */
export function modelFromRunDirectory(name: string): string {
  return name.replace(/-paper$/i, '').replace(/-\d{8}$/, '') || name;
}

async function* parseEvalResults(file: string, options: ParseOptions): AsyncGenerator<ParseItem> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    yield rejectItem(FORMAT, file, 'file', `cannot read the outcomes file: ${(error as Error).message}`, '');
    return;
  }
  const decoded = decodeUtf8(bytes);
  if (!('text' in decoded)) {
    yield rejectItem(FORMAT, file, decoded.position, decoded.reason, bytes.toString('utf8'));
    return;
  }
  const text = decoded.text;
  const parsed = parseJson(text);
  if (!parsed.ok) {
    yield rejectItem(FORMAT, file, parsed.position, `invalid outcomes JSON: ${parsed.reason}`, text);
    return;
  }
  const document = parsed.value;
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    yield rejectItem(FORMAT, file, '$', 'expected an object {instance_id: true|false}', text);
    return;
  }

  const runDirectory = basename(dirname(file));
  const model = options.model ?? modelFromRunDirectory(runDirectory);
  const dataset = options.dataset ?? findDataset(file);
  for (const [instanceId, resolved] of Object.entries(document)) {
    const position = `[${JSON.stringify(instanceId)}]`;
    if (typeof resolved !== 'boolean') {
      const found = stringifyRaw(resolved);
      const shown = found.length > 80 ? `${found.slice(0, 80)}…` : found;
      const reason = `expected true or false for instance ${instanceId}, got ${shown}`;
      yield rejectItem(FORMAT, file, position, reason, stringifyRaw({ [instanceId]: resolved }));
      continue;
    }
    if (instanceId.trim() === '') {
      yield rejectItem(FORMAT, file, position, 'empty instance id', JSON.stringify({ [instanceId]: resolved }));
      continue;
    }
    const runId = `${FORMAT}:${runDirectory}:${instanceId}`;
    const source = { format: FORMAT, file, position };
    yield eventItem({
      id: `${runId}#start`,
      runId,
      type: 'run-start',
      source,
      data: { task: instanceId, dataset, model, metadata: { runDirectory } },
    });
    yield eventItem({
      id: `${runId}#end`,
      runId,
      type: 'run-end',
      source,
      data: resolved ? { outcome: 'passed' } : { outcome: 'failed', failureReason: 'unresolved' },
    });
  }
}

/** The nearest folder above the file named like a SWE-bench dataset (`swe-bench-pro`, `SWE-bench_Verified`). */
function findDataset(file: string): string | undefined {
  for (let directory = dirname(file); directory !== dirname(directory); directory = dirname(directory)) {
    const name = basename(directory);
    if (/^(multi-)?swe-?bench/i.test(name)) return name;
  }
  return undefined;
}
