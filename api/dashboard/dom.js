/**
 * Building elements without HTML strings: text always goes in as text, so run outputs and SQL results can never
 * become markup.
 */

const SVG_NAMESPACE = 'http://www.w3.org/2000/svg';

/** Children as nodes: nested lists flattened, `null`, `undefined` and `false` left out, anything else as text. */
function nodesOf(children) {
  return children
    .flat(Number.POSITIVE_INFINITY)
    .filter((child) => child !== undefined && child !== null && child !== false)
    .map((child) => (child instanceof Node ? child : document.createTextNode(String(child))));
}

/** Replaces what an element holds (`replaceChildren` would write a left-out `null` as the text "null"). */
export function replaceContent(element, ...children) {
  element.replaceChildren(...nodesOf(children));
  return element;
}

function fill(element, attributes, children) {
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  element.append(...nodesOf(children));
  return element;
}

/** An HTML element: `h('a', { href: '#/sql' }, 'SQL')`. Attributes starting with `on` and holding a function are listeners. */
export function h(tag, attributes, ...children) {
  return fill(document.createElement(tag), attributes, children);
}

/** An SVG element, for the charts. */
export function svg(tag, attributes, ...children) {
  return fill(document.createElementNS(SVG_NAMESPACE, tag), attributes, children);
}

/** A box that says what went wrong, with the API's own `detail`. */
export function errorBox(error, context) {
  const status = error?.status ? ` (HTTP ${error.status}${error.title ? ` ${error.title}` : ''})` : '';
  return h(
    'div',
    { class: 'error', role: 'alert' },
    h('strong', {}, `${context ?? 'The request failed'}${status}`),
    h('p', { class: 'detail' }, error?.message ?? String(error)),
  );
}

/** A whole number with thousands separators, or a dash. */
export function formatCount(value) {
  return typeof value === 'number' ? value.toLocaleString('en') : '–';
}

/** A share as a percentage: 0.3333 → `33%`. */
export function formatPercent(value, digits = 0) {
  return typeof value === 'number' ? `${(value * 100).toFixed(digits)}%` : '–';
}

/** A p-value in the usual short form. */
export function formatPValue(value) {
  if (typeof value !== 'number') return '–';
  if (value < 0.001) return '< 0.001';
  return value.toFixed(3);
}

/** An ISO time as `2026-01-05 14:03` (UTC), or a dash. */
export function formatTime(value) {
  if (typeof value !== 'string' || value === '') return '–';
  return value.replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, ' UTC');
}

/** A readable name for a mechanism id: `repeated-failed-command` → `Repeated failed command`. */
export function mechanismTitle(mechanism) {
  const words = String(mechanism).replace(/[-_]+/g, ' ').trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** Any value as short text for a table cell. */
export function cellText(value) {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}
