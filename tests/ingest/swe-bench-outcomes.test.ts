import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TraceEvent } from '../../core/index.js';
import { modelFromRunDirectory, sweBenchOutcomesAdapter } from '../../ingest/swe-bench-outcomes.js';
import { ingestFiles } from '../fuzz/regression.js';
import { collect } from '../support/collect.js';
import { hasSharedTraces, sharedTracesDir } from '../support/shared-traces.js';

const fixtures = resolve(import.meta.dirname, '../fixtures/swe-bench/swe-bench-pro/traj');
const outcomesFile = (run: string) => join(fixtures, run, 'eval_results.json');

function ofType<T extends TraceEvent['type']>(events: TraceEvent[], type: T) {
  return events.filter((event): event is Extract<TraceEvent, { type: T }> => event.type === type);
}

describe('sweBenchOutcomesAdapter', () => {
  it('claims eval_results.json files holding a flat object of booleans', () => {
    const claims = (file: string, head: string) => sweBenchOutcomesAdapter.claimsFile?.(file, head);
    expect(claims('/x/gpt-4o-paper/eval_results.json', '{"instance_a": true, "instance_b": false}')).toBe(true);
    expect(claims('/x/gpt-4o-paper/eval_results.json', '{\n  "instance_a": false,\n')).toBe(true);
    expect(claims('/x/gpt-4o-paper/eval_results.json', '{"instance_a": {"resolved": true}}')).toBe(false);
    expect(claims('/x/gpt-4o-paper/results.json', '{"instance_a": true}')).toBe(false);
  });

  it('makes one run without steps per instance, passed or failed, with model and dataset from the folders', async () => {
    const file = outcomesFile('gpt-4o-paper');
    const { events, invalid, rejects } = await collect(sweBenchOutcomesAdapter, file, false);
    expect(invalid).toEqual([]);
    expect(rejects).toEqual([]);
    const starts = ofType(events, 'run-start');
    const ends = ofType(events, 'run-end');
    expect(starts).toHaveLength(4);
    expect(ends).toHaveLength(4);
    expect(events.filter((event) => event.type !== 'run-start' && event.type !== 'run-end')).toEqual([]);
    expect(ends.filter((end) => end.data.outcome === 'passed')).toHaveLength(2);

    const runId = 'swe-bench:gpt-4o-paper:instance_acme__widget-4d5e6f';
    expect(starts.find((start) => start.runId === runId)).toMatchObject({
      id: `${runId}#start`,
      source: { format: 'swe-bench', file, position: '["instance_acme__widget-4d5e6f"]' },
      data: { task: 'instance_acme__widget-4d5e6f', model: 'gpt-4o', dataset: 'swe-bench-pro' },
    });
    expect(ends.find((end) => end.runId === runId)).toMatchObject({
      id: `${runId}#end`,
      data: { outcome: 'failed', failureReason: 'unresolved' },
    });
  });

  it('rejects an entry that is not a boolean and still loads the others', async () => {
    const file = outcomesFile('kimi-k2-instruct-10132025');
    const { events, rejects } = await collect(sweBenchOutcomesAdapter, file, false);
    expect(ofType(events, 'run-end').map((end) => end.data.outcome)).toEqual(['failed', 'passed']);
    expect(ofType(events, 'run-start')[0]?.data.model).toBe('kimi-k2-instruct');
    expect(rejects).toEqual([
      {
        format: 'swe-bench',
        file,
        position: '["instance_acme__widget-4d5e6f"]',
        reason: 'expected true or false for instance instance_acme__widget-4d5e6f, got "not evaluated"',
        raw: '{"instance_acme__widget-4d5e6f":"not evaluated"}',
      },
    ]);
  });

  it('rejects a truncated file whole, with its raw text', async () => {
    const file = outcomesFile('broken-run');
    const { events, rejects } = await collect(sweBenchOutcomesAdapter, file, false);
    expect(events).toEqual([]);
    expect(rejects).toHaveLength(1);
    expect(rejects[0]).toMatchObject({ format: 'swe-bench', file, raw: readFileSync(file, 'utf8') });
    expect(rejects[0]?.position).toMatch(/^line 1 column \d+$/);
    expect(rejects[0]?.reason).toContain('truncated');
  });

  it('lets --model and --dataset override the folder names', async () => {
    const options = { model: 'gpt-4o-2024-05-13', dataset: 'swe-bench-pro-public' };
    const { events } = await collect(sweBenchOutcomesAdapter, outcomesFile('gpt-4o-paper'), false, options);
    expect(ofType(events, 'run-start')[0]?.data).toMatchObject(options);
  });

  it('drops the run labels SWE-bench Pro appends to model names', () => {
    expect(modelFromRunDirectory('claude-opus-4-1-paper')).toBe('claude-opus-4-1');
    expect(modelFromRunDirectory('gpt-5-250-turns-10132025')).toBe('gpt-5-250-turns');
    expect(modelFromRunDirectory('my-model')).toBe('my-model');
  });
});

describe.skipIf(!hasSharedTraces)('real SWE-bench Pro outcomes', () => {
  const root = join(sharedTracesDir, 'outcomes/swe-bench-pro/traj');
  const expected: Record<string, { runs: number; passed: number }> = {
    'claude-45sonnet-10132025': { runs: 730, passed: 319 },
    'claude-4sonnet-10132025': { runs: 562, passed: 240 },
    'claude-opus-4-1-paper': { runs: 891, passed: 206 },
    'claude-sonnet-4-paper': { runs: 663, passed: 166 },
    'gemini-2-5-pro-preview-paper': { runs: 955, passed: 105 },
    'gpt-4o-paper': { runs: 619, passed: 36 },
    'gpt-5-250-turns-10132025': { runs: 729, passed: 265 },
    'gptoss-paper': { runs: 728, passed: 118 },
    'kimi-k2-instruct-10132025': { runs: 729, passed: 202 },
  };

  it.each(Object.entries(expected))('%s: one run per entry with the right pass count', async (run, counts) => {
    const file = join(root, run, 'eval_results.json');
    expect(sweBenchOutcomesAdapter.claimsFile?.(file, readFileSync(file, 'utf8').slice(0, 4096))).toBe(true);
    const { events, invalid, rejects } = await collect(sweBenchOutcomesAdapter, file, false);
    expect(invalid).toEqual([]);
    expect(rejects).toEqual([]);
    const ends = ofType(events, 'run-end');
    expect(new Set(ends.map((end) => end.runId)).size).toBe(counts.runs);
    expect(ends.filter((end) => end.data.outcome === 'passed')).toHaveLength(counts.passed);
    expect(ends.filter((end) => end.data.outcome === 'failed')).toHaveLength(counts.runs - counts.passed);
    expect(ofType(events, 'run-start')[0]?.data.dataset).toBe('swe-bench-pro');
  });
});

describe('SWE-bench outcomes: bugs found by fuzzing (tests/fuzz)', () => {
  it('rejects an entry whose value is nested thousands of levels deep instead of crashing the import', async () => {
    const deep = `${'['.repeat(5000)}true${']'.repeat(5000)}`;
    const { rejects, events } = await ingestFiles({
      'swe-bench-pro/run-a/eval_results.json': `{"org__repo-1": true, "org__repo-2": ${deep}}`,
    });
    expect(events.map((event) => event.id)).toEqual([
      'swe-bench:run-a:org__repo-1#start',
      'swe-bench:run-a:org__repo-1#end',
    ]);
    expect(rejects.map((reject) => reject.position)).toEqual(['["org__repo-2"]']);
    expect(rejects[0]?.reason).toMatch(/^expected true or false for instance org__repo-2, got \(value not shown/);
  });
});
