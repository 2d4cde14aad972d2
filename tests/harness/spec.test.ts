import { describe, expect, it } from 'vitest';
import {
  applyPatch,
  applySpecPatch,
  canonicalJson,
  computeVersionId,
  defaultHarnessSpec,
  diffJson,
  HarnessSpec,
  parseHarnessSpec,
  Rule,
  VERSION_ID_LENGTH,
} from '../../harness/index.js';

describe('the harness spec', () => {
  it('ships a minimal default: short prompt, shell and file tools, no optional middleware or rules', () => {
    expect(defaultHarnessSpec.middleware).toEqual([]);
    expect(defaultHarnessSpec.rules).toEqual([]);
    expect(
      Object.entries(defaultHarnessSpec.tools)
        .filter(([, tool]) => tool.enabled)
        .map(([name]) => name),
    ).toEqual(['shell', 'read_file', 'write_file', 'edit_file', 'list_directory', 'finish']);
    expect(defaultHarnessSpec.instructions.system.length).toBeLessThan(400);
  });

  it('rejects unknown fields, bad budgets, unknown middleware and disabling finish, naming the field', () => {
    const bad = (changes: Record<string, unknown>) => () => parseHarnessSpec({ ...defaultHarnessSpec, ...changes });
    expect(bad({ extra: 1 })).toThrow(/Unrecognized key.*extra|extra/);
    expect(bad({ budgets: { ...defaultHarnessSpec.budgets, maxTurns: 0 } })).toThrow(/\/budgets\/maxTurns/);
    expect(bad({ middleware: [{ name: 'mind-reader' }] })).toThrow(/\/middleware\/0\/name/);
    expect(bad({ middleware: [{ name: 'loop-breaker', maxRepeats: 1 }] })).toThrow(/\/middleware\/0\/maxRepeats/);
    expect(bad({ middleware: [{ name: 'persistent-shell' }, { name: 'persistent-shell' }] })).toThrow(/listed twice/);
    expect(
      bad({ tools: { ...defaultHarnessSpec.tools, finish: { ...defaultHarnessSpec.tools.finish, enabled: false } } }),
    ).toThrow(/finish tool cannot be disabled/);
  });

  it('validates rules: patterns must compile, stay short and avoid nested quantifiers; actions must fit triggers', () => {
    const rule = (trigger: Record<string, unknown>, action: Record<string, unknown>) =>
      Rule.safeParse({ id: 'r1', trigger, action });
    expect(
      rule({ on: 'tool-result', output: 'No such file', exitCode: 'nonzero' }, { type: 'inject', message: 'm' })
        .success,
    ).toBe(true);
    expect(rule({ on: 'tool-call', command: '(unclosed' }, { type: 'block', reason: 'r' }).error?.message).toMatch(
      /not a valid regular expression/,
    );
    expect(rule({ on: 'tool-call', command: '(a+)+$' }, { type: 'block', reason: 'r' }).error?.message).toMatch(
      /nested quantifiers/,
    );
    expect(rule({ on: 'tool-call', command: 'x'.repeat(201) }, { type: 'block', reason: 'r' }).success).toBe(false);
    expect(rule({ on: 'tool-result' }, { type: 'block', reason: 'r' }).error?.message).toMatch(
      /action block cannot follow a tool-result trigger/,
    );
    expect(rule({ on: 'finish', command: 'x' }, { type: 'refuse-finish', message: 'm' }).success).toBe(false);
    expect(rule({ on: 'finish' }, { type: 'run', code: 'process.exit()' }).success).toBe(false);
    expect(
      Rule.safeParse({ id: 'Bad Id', trigger: { on: 'finish' }, action: { type: 'refuse-finish', message: 'm' } })
        .success,
    ).toBe(false);
  });
});

describe('editable surfaces', () => {
  it('applies a patch on declared surfaces and returns a new valid spec, leaving the original alone', () => {
    const result = applySpecPatch(defaultHarnessSpec, [
      { op: 'replace', path: '/instructions/verification', value: 'Check that every required file exists.' },
      { op: 'add', path: '/middleware/-', value: { name: 'persistent-shell' } },
      { op: 'replace', path: '/budgets/maxTurns', value: 80 },
      { op: 'replace', path: '/tools/shell/description', value: 'Run bash.' },
      {
        op: 'add',
        path: '/rules/-',
        value: { id: 'verify', trigger: { on: 'finish' }, action: { type: 'refuse-finish', message: 'Verify first.' } },
      },
    ]);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.spec.middleware).toEqual([{ name: 'persistent-shell' }]);
    expect(result.spec.budgets.maxTurns).toBe(80);
    expect(result.spec.rules[0]?.trigger).toMatchObject({ on: 'finish', count: 1, exitCode: 'any' });
    expect(defaultHarnessSpec.middleware).toEqual([]);
  });

  it('rejects operations outside the surfaces, with the operation and path in the reason', () => {
    const result = applySpecPatch(defaultHarnessSpec, [
      { op: 'replace', path: '/tools/shell/enabled', value: false },
      { op: 'replace', path: '/budgets', value: {} },
      { op: 'replace', path: '/schemaVersion', value: 2 },
      { op: 'move', from: '/tools/shell/enabled', path: '/instructions/system' },
    ]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reasons).toHaveLength(4);
    expect(result.reasons[0]).toMatch(/^operation 0 \(replace \/tools\/shell\/enabled\): not an editable surface/);
    expect(result.reasons[1]).toMatch(/^operation 1 \(replace \/budgets\)/);
    expect(result.reasons[3]).toMatch(/move from \/tools\/shell\/enabled\): the source is not an editable surface/);
  });

  it('rejects malformed patches, failing operations and patches that make the spec invalid', () => {
    const reasons = (patch: unknown) => {
      const result = applySpecPatch(defaultHarnessSpec, patch);
      return result.ok ? [] : result.reasons;
    };
    expect(reasons({ op: 'add' })).toEqual(['a JSON Patch is an array of operations']);
    expect(reasons([])).toEqual(['the patch is empty: it changes nothing']);
    expect(reasons([{ op: 'frobnicate', path: '/rules' }])[0]).toMatch(/op must be one of/);
    expect(reasons([{ op: 'remove', path: '/rules/3' }])[0]).toMatch(/operation 0: index 3 is out of range/);
    expect(reasons([{ op: 'replace', path: '/budgets/maxTurns', value: -5 }])[0]).toMatch(
      /the patched spec is invalid: \/budgets\/maxTurns/,
    );
    expect(
      reasons([
        { op: 'test', path: '/budgets/maxTurns', value: 1 },
        { op: 'remove', path: '/rules' },
      ])[0],
    ).toMatch(/test failed/);
  });
});

describe('JSON Patch', () => {
  it('follows RFC 6902 for add, remove, replace, move, copy and test, including escaped pointers', () => {
    const document = { a: { 'b/c': 1, 'd~e': [1, 2] }, list: ['x', 'y'] };
    const patched = applyPatch(document, [
      { op: 'add', path: '/list/1', value: 'inserted' },
      { op: 'remove', path: '/a/b~1c' },
      { op: 'copy', from: '/a/d~0e', path: '/copied' },
      { op: 'move', from: '/list/0', path: '/first' },
      { op: 'replace', path: '/copied/0', value: 9 },
      { op: 'test', path: '/first', value: 'x' },
    ]);
    expect(patched).toEqual({ a: { 'd~e': [1, 2] }, list: ['inserted', 'y'], copied: [9, 2], first: 'x' });
    expect(document.list).toEqual(['x', 'y']);
  });

  it('diffs two specs into a patch that turns one into the other', () => {
    const changed = applySpecPatch(defaultHarnessSpec, [
      { op: 'add', path: '/middleware/-', value: { name: 'loop-breaker' } },
      { op: 'replace', path: '/instructions/recovery', value: 'Read the error.' },
    ]);
    if (!changed.ok) throw new Error(changed.reasons.join('; '));
    const patch = diffJson(defaultHarnessSpec, changed.spec);
    expect(patch).toEqual([
      { op: 'replace', path: '/instructions/recovery', value: 'Read the error.' },
      { op: 'add', path: '/middleware/0', value: { name: 'loop-breaker', maxRepeats: 3, action: 'block' } },
    ]);
    expect(applyPatch(defaultHarnessSpec, patch)).toEqual(changed.spec);
  });
});

describe('version ids', () => {
  it('are the short sha256 of the canonical spec: stable across key order and filled-in defaults', () => {
    const id = computeVersionId(defaultHarnessSpec);
    expect(id).toMatch(new RegExp(`^[0-9a-f]{${VERSION_ID_LENGTH}}$`));
    const reordered = JSON.parse(canonicalJson(defaultHarnessSpec)) as Record<string, unknown>;
    const reversed = Object.fromEntries(Object.entries(reordered).reverse());
    expect(computeVersionId(reversed)).toBe(id);
    const { rules: _rules, subagents: _subagents, ...withoutDefaults } = defaultHarnessSpec;
    expect(computeVersionId(withoutDefaults)).toBe(id);
    expect(HarnessSpec.parse(withoutDefaults)).toEqual(defaultHarnessSpec);
  });

  it('change with any change of content', () => {
    const id = computeVersionId(defaultHarnessSpec);
    const edited = applySpecPatch(defaultHarnessSpec, [{ op: 'replace', path: '/budgets/maxTurns', value: 51 }]);
    if (!edited.ok) throw new Error('patch failed');
    expect(computeVersionId(edited.spec)).not.toBe(id);
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] })).toBe('{"a":[{"c":3,"d":2}],"b":1}');
  });
});
