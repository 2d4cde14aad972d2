/**
 * HTML and SVG for the notebooks: plain string builders, so each notebook cell stays a query plus one line that shows
 * its result (`Deno.jupyter.html(...)`). Values from DuckDB arrive as bigint, Date or nested objects; they are shown
 * as text, never trusted as markup.
 */

/** Text made safe to place inside HTML or SVG. */
export function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/** How one cell value reads in a table: numbers rounded to 3 places, objects as JSON, nothing as an empty cell. */
export function formatValue(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : value.toFixed(3);
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object')
    return JSON.stringify(value, (_key, inner) => (typeof inner === 'bigint' ? inner.toString() : inner));
  return String(value);
}

/** Rows (as returned by `EventLog.query`) as an HTML table; the columns are those of the first row. */
export function htmlTable(rows: readonly Record<string, unknown>[], caption?: string): string {
  if (rows.length === 0) return `<p><em>${escapeHtml(caption ?? 'Result')}: no rows.</em></p>`;
  const columns = Object.keys(rows[0] ?? {});
  const head = columns.map((column) => `<th>${escapeHtml(column)}</th>`).join('');
  const body = rows
    .map((row) => `<tr>${columns.map((column) => `<td>${escapeHtml(formatValue(row[column]))}</td>`).join('')}</tr>`)
    .join('\n');
  const title = caption === undefined ? '' : `<caption>${escapeHtml(caption)}</caption>`;
  return `<table>${title}<thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

/** One series of a grouped bar chart: a value per category in 0..1, with an optional interval per value. */
export interface BarSeries {
  name: string;
  values: readonly number[];
  low?: readonly number[];
  high?: readonly number[];
}

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7'];

/**
 * A grouped bar chart of rates (0..1) as standalone SVG: one group per category, one bar per series, with error bars
 * where the series gives intervals. Used for model failure profiles (category = mechanism, series = model).
 */
export function groupedBarChart(title: string, categories: readonly string[], series: readonly BarSeries[]): string {
  const left = 50;
  const top = 30;
  const plotHeight = 220;
  const labelHeight = 110;
  const bar = 14;
  const groupWidth = Math.max(series.length * bar + 16, 40);
  const width = left + categories.length * groupWidth + 20;
  const legendTop = top + plotHeight + labelHeight;
  const height = legendTop + series.length * 18 + 10;
  const y = (rate: number) => top + plotHeight * (1 - Math.min(Math.max(rate, 0), 1));
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<text x="${left}" y="16" font-size="13" font-weight="bold">${escapeHtml(title)}</text>`,
  ];
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(
      `<line x1="${left}" x2="${width - 10}" y1="${y(tick)}" y2="${y(tick)}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${y(tick) + 4}" text-anchor="end">${Math.round(tick * 100)}%</text>`,
    );
  }
  categories.forEach((category, index) => {
    const groupLeft = left + index * groupWidth + 8;
    series.forEach((entry, position) => {
      const value = entry.values[index] ?? 0;
      const x = groupLeft + position * bar;
      const color = PALETTE[position % PALETTE.length];
      parts.push(
        `<rect x="${x}" y="${y(value)}" width="${bar - 2}" height="${y(0) - y(value)}" fill="${color}"><title>${escapeHtml(`${entry.name}, ${category}: ${(value * 100).toFixed(1)}%`)}</title></rect>`,
      );
      const low = entry.low?.[index];
      const high = entry.high?.[index];
      if (low !== undefined && high !== undefined) {
        const middle = x + (bar - 2) / 2;
        parts.push(`<line x1="${middle}" x2="${middle}" y1="${y(low)}" y2="${y(high)}" stroke="#333"/>`);
      }
    });
    const labelX = groupLeft + (series.length * bar) / 2;
    parts.push(
      `<text transform="translate(${labelX},${y(0) + 10}) rotate(40)" text-anchor="start">${escapeHtml(category)}</text>`,
    );
  });
  series.forEach((entry, position) => {
    const legendY = legendTop + position * 18;
    parts.push(
      `<rect x="${left}" y="${legendY}" width="12" height="12" fill="${PALETTE[position % PALETTE.length]}"/>`,
      `<text x="${left + 18}" y="${legendY + 10}">${escapeHtml(entry.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** The part of Deno's Jupyter API the notebooks use (typed here so this file also reads outside Deno). */
interface JupyterDisplay {
  display(bundle: Record<string, string>, options: { raw: true }): Promise<void>;
}

/**
 * How long to wait after sending an output. Deno's kernel can report a cell finished before an output it sent at the
 * very end of the cell has gone out, and a headless run (nbconvert) then drops that output; a short pause after each
 * output keeps them in the cell.
 */
const FLUSH_MS = 50;

async function display(bundle: Record<string, string>): Promise<void> {
  const deno = (globalThis as { Deno?: { jupyter?: JupyterDisplay } }).Deno;
  if (deno?.jupyter === undefined) throw new Error('showHtml, showSvg and showText work only in Deno’s Jupyter kernel');
  await deno.jupyter.display(bundle, { raw: true });
  await new Promise((resolve) => setTimeout(resolve, FLUSH_MS));
}

/** Shows markup as a cell output (text/html), with a plain-text fallback for viewers that do not render HTML. */
export function showHtml(markup: string): Promise<void> {
  return display({ 'text/html': markup, 'text/plain': markup.replace(/<[^>]+>/g, ' ') });
}

/** Shows an SVG chart as a cell output (image/svg+xml). */
export function showSvg(svg: string): Promise<void> {
  return display({ 'image/svg+xml': svg, 'text/plain': 'SVG chart' });
}

/** Shows a line of text as a cell output (used instead of console.log, whose output can arrive after the cell ends). */
export function showText(text: string): Promise<void> {
  return display({ 'text/plain': text });
}
