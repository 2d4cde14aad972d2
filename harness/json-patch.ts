/**
 * JSON Patch (RFC 6902) and JSON Pointer (RFC 6901) over plain JSON values: the language harness edits are written
 * in. Pure functions: a patch is applied to a copy, and the first failing operation is reported with its index.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export type PatchOperation =
  | { readonly op: 'add' | 'replace' | 'test'; readonly path: string; readonly value: unknown }
  | { readonly op: 'remove'; readonly path: string }
  | { readonly op: 'move' | 'copy'; readonly from: string; readonly path: string };

/** A patch that cannot be applied, with the index of the operation and the reason. */
export class PatchError extends Error {
  constructor(
    readonly index: number,
    readonly reason: string,
  ) {
    super(`operation ${index}: ${reason}`);
    this.name = 'PatchError';
  }
}

const operations = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);

/** Checks the shape of a patch read from outside; returns the operations or a reason naming the bad one. */
export function parsePatch(value: unknown): { operations: PatchOperation[] } | { error: string } {
  if (!Array.isArray(value)) return { error: 'a JSON Patch is an array of operations' };
  const result: PatchOperation[] = [];
  for (const [index, item] of value.entries()) {
    if (item === null || typeof item !== 'object' || Array.isArray(item))
      return { error: `operation ${index} is not an object` };
    const record = item as Record<string, unknown>;
    if (typeof record.op !== 'string' || !operations.has(record.op))
      return { error: `operation ${index}: op must be one of ${[...operations].join(', ')}` };
    if (typeof record.path !== 'string') return { error: `operation ${index}: path must be a string` };
    if (record.op === 'move' || record.op === 'copy') {
      if (typeof record.from !== 'string') return { error: `operation ${index}: ${record.op} needs a from pointer` };
      result.push({ op: record.op, from: record.from, path: record.path });
    } else if (record.op === 'remove') {
      result.push({ op: 'remove', path: record.path });
    } else {
      if (!('value' in record)) return { error: `operation ${index}: ${record.op} needs a value` };
      result.push({ op: record.op as 'add' | 'replace' | 'test', path: record.path, value: record.value });
    }
  }
  return { operations: result };
}

/** Splits a JSON Pointer into its unescaped tokens; throws on a pointer that does not start with `/`. */
export function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new Error(`pointer ${JSON.stringify(pointer)} must start with /`);
  return pointer
    .slice(1)
    .split('/')
    .map((token) => token.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** Writes tokens as a JSON Pointer. */
export function formatPointer(tokens: readonly (string | number)[]): string {
  return tokens.map((token) => `/${String(token).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

/** Applies a patch to a copy of `document`; the original is left as it was. */
export function applyPatch(document: unknown, patch: readonly PatchOperation[]): unknown {
  let root = structuredClone(document) as unknown;
  patch.forEach((operation, index) => {
    try {
      root = applyOperation(root, operation);
    } catch (error) {
      throw new PatchError(index, (error as Error).message);
    }
  });
  return root;
}

function applyOperation(root: unknown, operation: PatchOperation): unknown {
  switch (operation.op) {
    case 'add':
      return add(root, parsePointer(operation.path), structuredClone(operation.value));
    case 'remove':
      return remove(root, parsePointer(operation.path)).root;
    case 'replace': {
      const tokens = parsePointer(operation.path);
      get(root, tokens);
      return add(remove(root, tokens).root, tokens, structuredClone(operation.value), true);
    }
    case 'move': {
      const from = parsePointer(operation.from);
      const to = parsePointer(operation.path);
      if (to.length > from.length && from.every((token, index) => to[index] === token))
        throw new Error(`cannot move ${operation.from} into its own child ${operation.path}`);
      const removed = remove(root, from);
      return add(removed.root, to, removed.value);
    }
    case 'copy':
      return add(root, parsePointer(operation.path), structuredClone(get(root, parsePointer(operation.from))));
    case 'test': {
      const actual = get(root, parsePointer(operation.path));
      if (!isDeepEqual(actual, operation.value))
        throw new Error(`test failed: ${operation.path} is ${JSON.stringify(actual)}`);
      return root;
    }
  }
}

/** The value at a JSON Pointer; throws when there is none. */
export function valueAt(document: unknown, pointer: string): unknown {
  return get(document, parsePointer(pointer));
}

function get(root: unknown, tokens: readonly string[]): unknown {
  let current = root;
  for (const [depth, token] of tokens.entries()) {
    const where = formatPointer(tokens.slice(0, depth + 1));
    if (Array.isArray(current)) {
      const index = arrayIndex(token, current.length, false);
      current = current[index];
    } else if (isObject(current)) {
      if (!Object.hasOwn(current, token)) throw new Error(`${where} does not exist`);
      current = current[token];
    } else {
      throw new Error(`${where} does not exist`);
    }
  }
  return current;
}

function add(root: unknown, tokens: readonly string[], value: unknown, replacing = false): unknown {
  if (tokens.length === 0) return value;
  const parent = get(root, tokens.slice(0, -1));
  const last = tokens[tokens.length - 1]!;
  if (Array.isArray(parent)) {
    const index = last === '-' && !replacing ? parent.length : arrayIndex(last, parent.length, true);
    parent.splice(index, 0, value);
  } else if (isObject(parent)) {
    parent[last] = value;
  } else {
    throw new Error(`${formatPointer(tokens.slice(0, -1))} is not an object or array`);
  }
  return root;
}

function remove(root: unknown, tokens: readonly string[]): { root: unknown; value: unknown } {
  if (tokens.length === 0) throw new Error('cannot remove the whole document');
  const parent = get(root, tokens.slice(0, -1));
  const last = tokens[tokens.length - 1]!;
  if (Array.isArray(parent)) {
    const index = arrayIndex(last, parent.length, false);
    const [value] = parent.splice(index, 1);
    return { root, value };
  }
  if (isObject(parent) && Object.hasOwn(parent, last)) {
    const value = parent[last];
    delete parent[last];
    return { root, value };
  }
  throw new Error(`${formatPointer(tokens)} does not exist`);
}

function arrayIndex(token: string, length: number, allowEnd: boolean): number {
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new Error(`${JSON.stringify(token)} is not an array index`);
  const index = Number(token);
  if (index > length || (index === length && !allowEnd))
    throw new Error(`index ${index} is out of range (length ${length})`);
  return index;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Structural equality of JSON values (key order does not matter). */
export function isDeepEqual(left: unknown, right: unknown): boolean {
  if (left === right) return true;
  if (Array.isArray(left) || Array.isArray(right)) {
    if (!Array.isArray(left) || !Array.isArray(right) || left.length !== right.length) return false;
    return left.every((item, index) => isDeepEqual(item, right[index]));
  }
  if (isObject(left) && isObject(right)) {
    const keys = Object.keys(left);
    if (keys.length !== Object.keys(right).length) return false;
    return keys.every((key) => Object.hasOwn(right, key) && isDeepEqual(left[key], right[key]));
  }
  return false;
}

/**
 * The operations that turn `before` into `after`: objects are compared key by key, arrays element by element (a
 * longer or shorter array adds or removes at the end), anything else is replaced. Applying the result to `before`
 * gives `after`.
 */
export function diffJson(before: unknown, after: unknown, path: readonly (string | number)[] = []): PatchOperation[] {
  if (isDeepEqual(before, after)) return [];
  if (isObject(before) && isObject(after)) {
    const result: PatchOperation[] = [];
    for (const key of Object.keys(before).sort()) {
      if (!Object.hasOwn(after, key)) result.push({ op: 'remove', path: formatPointer([...path, key]) });
      else result.push(...diffJson(before[key], after[key], [...path, key]));
    }
    for (const key of Object.keys(after).sort()) {
      if (!Object.hasOwn(before, key))
        result.push({ op: 'add', path: formatPointer([...path, key]), value: after[key] });
    }
    return result;
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    const result: PatchOperation[] = [];
    const shared = Math.min(before.length, after.length);
    for (let index = 0; index < shared; index += 1)
      result.push(...diffJson(before[index], after[index], [...path, index]));
    for (let index = before.length - 1; index >= after.length; index -= 1)
      result.push({ op: 'remove', path: formatPointer([...path, index]) });
    for (let index = before.length; index < after.length; index += 1)
      result.push({ op: 'add', path: formatPointer([...path, index]), value: after[index] });
    return result;
  }
  return [{ op: 'replace', path: formatPointer(path), value: after }];
}
