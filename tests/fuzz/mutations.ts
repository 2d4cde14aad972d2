import fc from 'fast-check';

/**
 * Mutations of one input file, as fast-check generates them. Byte mutations damage the text anywhere; JSON mutations
 * parse the document (or one line of a JSON-lines file), change one value or list, and write it back, so that the file
 * stays valid JSON but breaks the format's schema; file mutations replace the file as a whole.
 */
export type Mutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'flip-byte'; at: number; mask: number }
  | { kind: 'insert-bytes'; at: number; bytes: number[] }
  | { kind: 'delete-bytes'; at: number; length: number }
  | { kind: 'invalid-utf8'; at: number; bytes: number[] }
  | { kind: 'wrong-type'; pick: number; line: number; value: unknown }
  | { kind: 'delete-field'; pick: number; line: number }
  | { kind: 'duplicate-item'; pick: number; line: number }
  | { kind: 'reorder-items'; pick: number; line: number }
  | { kind: 'deep-nesting'; pick: number; line: number; depth: number }
  | { kind: 'enormous-string'; pick: number; line: number; length: number }
  | { kind: 'duplicate-line'; line: number }
  | { kind: 'reorder-lines'; line: number }
  | { kind: 'empty' }
  | { kind: 'directory-clash' }
  | { kind: 'remove' };

/** Mutations that leave the file a (possibly damaged) regular file whose new bytes `applyMutation` returns. */
export type ContentMutation = Exclude<Mutation, { kind: 'directory-clash' } | { kind: 'remove' }>;

const position = fc.nat({ max: 1_000_000 });
const line = fc.nat({ max: 10_000 });

const wrongValue = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -5, max: 5 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 8 }),
  fc.constant([]),
  fc.constant({}),
  fc.constant([1, 'two', null]),
  fc.constant({ nested: { deeper: [true] } }),
);

/** Invalid UTF-8: a lead byte followed by a non-continuation byte, bytes that never occur, a lone continuation. */
const invalidUtf8 = fc.constantFrom<number[]>(
  [0xc3, 0x28],
  [0xff],
  [0xfe, 0xfe],
  [0x80],
  [0xe2, 0x82],
  [0xed, 0xa0, 0x80],
);

export const byteMutation: fc.Arbitrary<Mutation> = fc.oneof<fc.Arbitrary<Mutation>[]>(
  fc.record({ kind: fc.constant('truncate' as const), at: position }),
  fc.record({ kind: fc.constant('flip-byte' as const), at: position, mask: fc.integer({ min: 1, max: 255 }) }),
  fc.record({
    kind: fc.constant('insert-bytes' as const),
    at: position,
    bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 6 }),
  }),
  fc.record({ kind: fc.constant('delete-bytes' as const), at: position, length: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ kind: fc.constant('invalid-utf8' as const), at: position, bytes: invalidUtf8 }),
);

export const jsonMutation: fc.Arbitrary<Mutation> = fc.oneof<fc.Arbitrary<Mutation>[]>(
  fc.record({ kind: fc.constant('wrong-type' as const), pick: position, line, value: wrongValue }),
  fc.record({ kind: fc.constant('delete-field' as const), pick: position, line }),
  fc.record({ kind: fc.constant('duplicate-item' as const), pick: position, line }),
  fc.record({ kind: fc.constant('reorder-items' as const), pick: position, line }),
  fc.record({
    kind: fc.constant('deep-nesting' as const),
    pick: position,
    line,
    depth: fc.integer({ min: 2_000, max: 20_000 }),
  }),
  fc.record({
    kind: fc.constant('enormous-string' as const),
    pick: position,
    line,
    length: fc.integer({ min: 1_000_000, max: 1_200_000 }),
  }),
);

export const lineMutation: fc.Arbitrary<Mutation> = fc.oneof<fc.Arbitrary<Mutation>[]>(
  fc.record({ kind: fc.constant('duplicate-line' as const), line }),
  fc.record({ kind: fc.constant('reorder-lines' as const), line }),
);

export const fileMutation: fc.Arbitrary<Mutation> = fc.constantFrom<Mutation>(
  { kind: 'empty' },
  { kind: 'directory-clash' },
  { kind: 'remove' },
);

/** Any mutation; JSON-lines files also get line duplication and reordering. */
export function anyMutation(lines: boolean): fc.Arbitrary<Mutation> {
  const weighted: fc.WeightedArbitrary<Mutation>[] = [
    { arbitrary: byteMutation, weight: 5 },
    { arbitrary: jsonMutation, weight: 5 },
    { arbitrary: fileMutation, weight: 1 },
  ];
  if (lines) weighted.push({ arbitrary: lineMutation, weight: 2 });
  return fc.oneof(...weighted);
}

/** The file's bytes after a content mutation. `lines` makes JSON mutations work on one line of a JSON-lines file. */
export function applyMutation(original: Buffer, mutation: ContentMutation, lines: boolean): Buffer {
  const at = (value: number, length = original.length) => (length === 0 ? 0 : value % (length + 1));
  switch (mutation.kind) {
    case 'truncate':
      return original.subarray(0, at(mutation.at, Math.max(0, original.length - 1)));
    case 'flip-byte': {
      if (original.length === 0) return original;
      const copy = Buffer.from(original);
      const index = mutation.at % copy.length;
      copy[index] = (copy[index] ?? 0) ^ mutation.mask;
      return copy;
    }
    case 'insert-bytes':
    case 'invalid-utf8': {
      const index = at(mutation.at);
      return Buffer.concat([original.subarray(0, index), Buffer.from(mutation.bytes), original.subarray(index)]);
    }
    case 'delete-bytes': {
      const index = at(mutation.at);
      return Buffer.concat([original.subarray(0, index), original.subarray(index + mutation.length)]);
    }
    case 'empty':
      return Buffer.alloc(0);
    case 'duplicate-line':
    case 'reorder-lines':
      return Buffer.from(mutateLines(original.toString('utf8'), mutation), 'utf8');
    default:
      return Buffer.from(mutateJsonText(original.toString('utf8'), mutation, lines), 'utf8');
  }
}

function mutateLines(text: string, mutation: { kind: 'duplicate-line' | 'reorder-lines'; line: number }): string {
  const lines = text.split('\n');
  const filled = lines.map((line, index) => ({ line, index })).filter(({ line }) => line.trim() !== '');
  if (filled.length === 0) return text;
  const chosen = filled[mutation.line % filled.length] as { line: string; index: number };
  if (mutation.kind === 'duplicate-line') {
    lines.splice(chosen.index + 1, 0, chosen.line);
    return lines.join('\n');
  }
  const other = filled[(mutation.line + 1) % filled.length] as { line: string; index: number };
  lines[chosen.index] = other.line;
  lines[other.index] = chosen.line;
  return lines.join('\n');
}

type JsonMutation = Extract<
  Mutation,
  { kind: 'wrong-type' | 'delete-field' | 'duplicate-item' | 'reorder-items' | 'deep-nesting' | 'enormous-string' }
>;

function mutateJsonText(text: string, mutation: JsonMutation, lines: boolean): string {
  if (!lines) {
    const document = tryParse(text);
    return document === undefined ? text : serialise(mutateJson(document.value, mutation), mutation, 2);
  }
  const all = text.split('\n');
  const parsed = all
    .map((line, index) => ({ index, document: line.trim() === '' ? undefined : tryParse(line) }))
    .filter((entry) => entry.document !== undefined);
  if (parsed.length === 0) return text;
  const chosen = parsed[mutation.line % parsed.length] as { index: number; document: { value: unknown } };
  all[chosen.index] = serialise(mutateJson(chosen.document.value, mutation), mutation);
  return all.join('\n');
}

type Path = (string | number)[];

/** The changed document; for deep nesting, a placeholder stands where `inner` goes, wrapped in arrays. */
type MutatedJson = { value: unknown; inner?: unknown };

/** Returns the document with one change; the input is not modified. */
function mutateJson(document: unknown, mutation: JsonMutation): MutatedJson {
  const copy = structuredClone(document);
  const nodes = listNodes(copy);
  const pick = <T>(items: T[]): T | undefined => (items.length === 0 ? undefined : items[mutation.pick % items.length]);
  switch (mutation.kind) {
    case 'wrong-type': {
      const node = pick(nodes.filter((entry) => entry.path.length > 0));
      return { value: node ? replaceAt(copy, node.path, mutation.value) : mutation.value };
    }
    case 'delete-field': {
      const node = pick(nodes.filter((entry) => typeof entry.path.at(-1) === 'string'));
      if (!node) return { value: copy };
      const parent = valueAt(copy, node.path.slice(0, -1)) as Record<string, unknown>;
      delete parent[node.path.at(-1) as string];
      return { value: copy };
    }
    case 'duplicate-item':
    case 'reorder-items': {
      const minimum = mutation.kind === 'duplicate-item' ? 1 : 2;
      const node = pick(nodes.filter((entry) => Array.isArray(entry.value) && entry.value.length >= minimum));
      if (!node) return { value: copy };
      const list = node.value as unknown[];
      const index = mutation.pick % list.length;
      if (mutation.kind === 'duplicate-item') list.splice(index + 1, 0, structuredClone(list[index]));
      else list.push(...list.splice(index, 1));
      return { value: copy };
    }
    case 'deep-nesting': {
      // The nesting is written as text by `serialise`: JSON.stringify itself cannot write thousands of levels.
      const node = pick(nodes.filter((entry) => entry.path.length > 0));
      return node
        ? { value: replaceAt(copy, node.path, DEEP_MARKER), inner: node.value }
        : { value: DEEP_MARKER, inner: copy };
    }
    case 'enormous-string': {
      const node = pick(nodes.filter((entry) => typeof entry.value === 'string'));
      const huge = 'x'.repeat(mutation.length);
      return { value: node ? replaceAt(copy, node.path, huge) : copy };
    }
  }
}

const DEEP_MARKER = '__fuzz_deep_nesting__';

/** JSON text of a mutated document, with the deep-nesting placeholder written out as `depth` nested arrays. */
function serialise(mutated: MutatedJson, mutation: JsonMutation, indent?: number): string {
  const text = JSON.stringify(mutated.value, null, indent);
  if (mutation.kind !== 'deep-nesting' || !('inner' in mutated)) return text;
  const nested = `${'['.repeat(mutation.depth)}${JSON.stringify(mutated.inner) ?? 'null'}${']'.repeat(mutation.depth)}`;
  return text.replace(JSON.stringify(DEEP_MARKER), () => nested);
}

function listNodes(root: unknown): { path: Path; value: unknown }[] {
  const nodes: { path: Path; value: unknown }[] = [];
  const stack: { path: Path; value: unknown }[] = [{ path: [], value: root }];
  while (stack.length > 0 && nodes.length < 20_000) {
    const node = stack.pop() as { path: Path; value: unknown };
    nodes.push(node);
    if (Array.isArray(node.value)) {
      node.value.forEach((value, index) => {
        stack.push({ path: [...node.path, index], value });
      });
    } else if (typeof node.value === 'object' && node.value !== null) {
      for (const [key, value] of Object.entries(node.value)) stack.push({ path: [...node.path, key], value });
    }
  }
  return nodes;
}

function valueAt(root: unknown, path: Path): unknown {
  let current = root;
  for (const key of path) current = (current as Record<string | number, unknown>)[key];
  return current;
}

function replaceAt(root: unknown, path: Path, value: unknown): unknown {
  if (path.length === 0) return value;
  const parent = valueAt(root, path.slice(0, -1)) as Record<string | number, unknown>;
  parent[path.at(-1) as string | number] = value;
  return root;
}

function tryParse(text: string): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(text) };
  } catch {
    return undefined;
  }
}

/** A readable one-line description of a mutation for failure messages (huge values left out). */
export function describeMutation(mutation: Mutation): string {
  return JSON.stringify(mutation, (key, value) => (key === 'value' && JSON.stringify(value).length > 80 ? '…' : value));
}
