import { postJson } from '../api.js';
import { cellText, errorBox, formatCount, h, replaceContent } from '../dom.js';

const QUERY_KEY = 'selfharness-sql';
const EXAMPLE = 'SELECT model, outcome, count(*) AS runs\nFROM runs\nGROUP BY ALL\nORDER BY ALL';

/**
 * A SQL console over the log: one read-only query per run (`POST /v1/sql`), the rows as a table, and the server's
 * explanation when it refuses a query.
 */
export async function renderSql(main, { signal }) {
  const editor = h('textarea', {
    name: 'sql',
    rows: 8,
    spellcheck: 'false',
    'aria-label': 'SQL query',
  });
  editor.value = sessionStorage.getItem(QUERY_KEY) ?? EXAMPLE;
  const output = h('section', { class: 'sql-output', 'aria-live': 'polite' });
  const button = h('button', { type: 'submit' }, 'Run');
  const form = h(
    'form',
    { class: 'sql-form', autocomplete: 'off' },
    editor,
    h(
      'div',
      { class: 'actions' },
      button,
      h(
        'span',
        { class: 'muted small' },
        'Ctrl+Enter runs it. One read-only statement (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN) over the tables ',
        ['runs', 'steps', 'tool_calls', 'verifications', 'events', 'weakness_clusters'].map((table, index) => [
          index > 0 ? ', ' : '',
          h('code', {}, table),
        ]),
        ' and the analytics views.',
      ),
    ),
  );
  const run = async () => {
    const sql = editor.value;
    sessionStorage.setItem(QUERY_KEY, sql);
    button.disabled = true;
    replaceContent(output, h('p', { class: 'muted' }, 'Running…'));
    const started = performance.now();
    try {
      const { body } = await postJson('/v1/sql', { sql }, signal);
      replaceContent(output, resultTable(body, performance.now() - started));
    } catch (error) {
      if (error?.name === 'AbortError') return;
      replaceContent(output, errorBox(error, 'The query was refused'));
    } finally {
      button.disabled = false;
    }
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    run();
  });
  editor.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      run();
    }
  });
  replaceContent(main, h('h1', {}, 'SQL console'), form, output);
}

function resultTable(result, milliseconds) {
  const summary = h(
    'p',
    { class: 'muted small result-summary' },
    `${formatCount(result.rows.length)} row${result.rows.length === 1 ? '' : 's'}${result.truncated ? ' (truncated: more rows matched; add a LIMIT or narrow the query)' : ''} in ${Math.round(milliseconds)} ms`,
  );
  if (result.columns.length === 0) return summary;
  return h(
    'div',
    {},
    summary,
    h(
      'div',
      { class: 'table-scroll' },
      h(
        'table',
        { class: 'data sql-result' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            result.columns.map((column) => h('th', {}, column)),
          ),
        ),
        h(
          'tbody',
          {},
          result.rows.map((row) =>
            h(
              'tr',
              {},
              result.columns.map((column) => {
                const value = row[column];
                return h(
                  'td',
                  { class: value === null || value === undefined ? 'null' : typeof value === 'number' ? 'number' : '' },
                  cellText(value),
                );
              }),
            ),
          ),
        ),
      ),
    ),
  );
}
