import { h } from './dom.js';

/** The tokens of a JSON Pointer (`/instructions/recovery` → `['instructions', 'recovery']`). */
export function pointerTokens(pointer) {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((token) => token.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** The value a pointer names in a document, or undefined. */
export function valueAt(document, pointer) {
  let value = document;
  for (const token of pointerTokens(pointer)) {
    if (value === null || typeof value !== 'object') return undefined;
    value = Array.isArray(value) ? value[Number(token)] : value[token];
  }
  return value;
}

const VERBS = { add: 'Added', remove: 'Removed', replace: 'Changed', move: 'Moved', copy: 'Copied', test: 'Checked' };

function valueBlock(value, kind) {
  if (value === '') return h('pre', { class: `value ${kind} empty-value` }, '(empty text)');
  const text = typeof value === 'string' ? value : JSON.stringify(value, null, 2);
  return h('pre', { class: `value ${kind}` }, text ?? '(nothing)');
}

/**
 * A JSON Patch as a list a person can read: per operation what happened where (`Changed instructions › recovery`),
 * the value before (looked up in the base spec) and the value after.
 */
export function renderPatch(patch, baseSpec) {
  if (patch.length === 0) return h('p', { class: 'muted' }, 'The two versions are the same.');
  return h(
    'ol',
    { class: 'patch' },
    patch.map((operation) => {
      const before = ['replace', 'remove'].includes(operation.op) ? valueAt(baseSpec, operation.path) : undefined;
      const from =
        operation.from === undefined
          ? null
          : h('span', { class: 'muted' }, ` from ${pointerTokens(operation.from).join(' › ')}`);
      return h(
        'li',
        { class: `operation op-${operation.op}` },
        h(
          'div',
          { class: 'operation-head' },
          h('span', { class: `badge op-${operation.op}` }, VERBS[operation.op] ?? operation.op),
          ' ',
          h(
            'code',
            { class: 'path', title: operation.path },
            pointerTokens(operation.path).join(' › ') || '(whole spec)',
          ),
          from,
        ),
        before !== undefined ? valueBlock(before, 'before') : null,
        'value' in operation ? valueBlock(operation.value, 'after') : null,
      );
    }),
  );
}
