import { getJson, postJson, readEventStream, request } from '../api.js';
import { errorBox, formatTime, h, replaceContent } from '../dom.js';

/**
 * Improve jobs: the list, a form that starts one (`POST /v1/improve`), and live progress read from each unfinished
 * job's event stream (`progress` and `end` events carrying the job).
 */

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);
const MODELS_SQL = 'SELECT DISTINCT model FROM runs WHERE model IS NOT NULL ORDER BY model';

export async function renderJobs(main, { id, signal }) {
  if (id !== undefined) {
    await renderJob(main, id, signal);
    return;
  }
  const list = h('section', { class: 'job-list' }, h('p', { class: 'muted' }, 'Loading jobs…'));
  replaceContent(main, h('h1', {}, 'Improve jobs'), startForm(signal), h('h2', {}, 'Jobs'), list);
  let jobs;
  try {
    const answer = await getJson('/v1/jobs', signal);
    jobs = Array.isArray(answer) ? answer : (answer.jobs ?? []);
  } catch (error) {
    if (error?.name === 'AbortError') throw error;
    replaceContent(list, errorBox(error, 'GET /v1/jobs failed: the job list is not available'));
    return;
  }
  if (jobs.length === 0) {
    replaceContent(list, h('p', { class: 'empty' }, 'No jobs yet: start one with the form above.'));
    return;
  }
  const rows = new Map();
  const table = h(
    'table',
    { class: 'data jobs' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['Job', 'Status', 'Model', 'Created', 'Progress'].map((name) => h('th', {}, name)),
      ),
    ),
    h(
      'tbody',
      {},
      jobs.map((job) => {
        const row = h('tr', { dataset: { job: job.id } });
        fillRow(row, job);
        rows.set(job.id, row);
        return row;
      }),
    ),
  );
  replaceContent(list, table);
  for (const job of jobs) {
    if (FINISHED.has(job.status)) continue;
    followJob(job.id, (update) => fillRow(rows.get(job.id), update), signal).catch((error) => {
      if (error?.name !== 'AbortError')
        rows
          .get(job.id)
          ?.after(h('tr', {}, h('td', { colspan: 5 }, errorBox(error, `Live progress of ${job.id} stopped`))));
    });
  }
}

function fillRow(row, job) {
  replaceContent(
    row,
    h('td', {}, h('a', { href: `#/jobs/${encodeURIComponent(job.id)}` }, h('code', {}, job.id))),
    h('td', {}, statusBadge(job.status)),
    h('td', {}, job.options?.model ?? '–'),
    h('td', { class: 'small' }, formatTime(job.createdAt)),
    h('td', {}, progressView(job)),
  );
}

function statusBadge(status) {
  const kind = status === 'succeeded' ? 'ok' : status === 'failed' ? 'bad' : status === 'running' ? 'live' : 'neutral';
  return h('span', { class: `badge status ${kind}` }, status);
}

function progressView(job) {
  const progress = job.progress ?? {};
  const total = typeof progress.total === 'number' && progress.total > 0 ? progress.total : undefined;
  const done = typeof progress.done === 'number' ? progress.done : 0;
  const bar = total
    ? h('progress', { max: total, value: Math.min(done, total) })
    : FINISHED.has(job.status)
      ? null
      : h('progress', {});
  const text = [progress.phase, progress.message].filter(Boolean).join(': ');
  return h(
    'div',
    { class: 'progress' },
    bar,
    h('span', { class: 'small progress-text' }, `${text}${total ? ` (${done}/${total})` : ''}` || job.status),
  );
}

/** Calls `onJob` with the job each time its stream reports; resolves when the stream ends. */
async function followJob(jobId, onJob, signal) {
  await readEventStream(
    `/v1/jobs/${encodeURIComponent(jobId)}/events`,
    (message) => {
      if ((message.event === 'progress' || message.event === 'end') && message.data && typeof message.data === 'object')
        onJob(message.data);
    },
    signal,
  );
}

function numberField(name, label, hint) {
  return h(
    'label',
    {},
    label,
    h('input', { type: 'number', name, min: 1, step: 1, inputmode: 'numeric', placeholder: hint }),
  );
}

function startForm(signal) {
  const models = h('datalist', { id: 'job-models' });
  const message = h('div', { class: 'form-message', 'aria-live': 'polite' });
  const form = h(
    'form',
    { class: 'panel start-job', autocomplete: 'off' },
    h('h2', {}, 'Start an improve job'),
    h(
      'p',
      { class: 'muted small' },
      'Mines the model’s failures, proposes harness edits, validates them with paired trials and promotes what passes the gate.',
    ),
    h(
      'div',
      { class: 'fields' },
      h(
        'label',
        {},
        'Model',
        h('input', { name: 'model', required: true, list: 'job-models', placeholder: 'model id' }),
      ),
      numberField('iterations', 'Iterations', 'default'),
      numberField('candidates', 'Candidates', 'default'),
      numberField('attempts', 'Attempts', 'default'),
      h('button', { type: 'submit' }, 'Start'),
    ),
    models,
    message,
  );
  postJson('/v1/sql', { sql: MODELS_SQL }, signal).then(
    (answer) => replaceContent(models, ...answer.body.rows.map((row) => h('option', { value: row.model }))),
    () => undefined,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = { model: form.elements.model.value.trim() };
    for (const name of ['iterations', 'candidates', 'attempts']) {
      const value = form.elements[name].value;
      if (value !== '') body[name] = Number(value);
    }
    const button = form.querySelector('button');
    button.disabled = true;
    replaceContent(message, h('p', { class: 'muted' }, 'Starting…'));
    try {
      const answer = await postJson('/v1/improve', body, signal);
      const job = answer.body.job;
      replaceContent(message, h('p', {}, 'Started job ', h('code', {}, job.id), '.'));
      location.hash = `#/jobs/${encodeURIComponent(job.id)}`;
    } catch (error) {
      if (error?.name === 'AbortError') return;
      replaceContent(message, errorBox(error, 'The job was not started'));
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

/** What an improve job came to: the harness before and after, the trials, the edits accepted, then the whole result. */
function resultView(result) {
  const version = (id) => (id ? h('a', { href: `#/harness/${encodeURIComponent(id)}` }, h('code', {}, id)) : '–');
  const accepted = Array.isArray(result.acceptedEdits) ? result.acceptedEdits : [];
  return h(
    'section',
    { class: 'job-result' },
    h('h2', {}, 'Result'),
    h(
      'dl',
      { class: 'facts' },
      h('div', {}, h('dt', {}, 'Harness before'), h('dd', {}, version(result.initialVersionId))),
      h('div', {}, h('dt', {}, 'Harness after'), h('dd', {}, version(result.finalVersionId))),
      h('div', {}, h('dt', {}, 'Iterations'), h('dd', {}, String(result.iterations?.length ?? '–'))),
      h('div', {}, h('dt', {}, 'Trials run'), h('dd', {}, String(result.trialsRun ?? '–'))),
      h('div', {}, h('dt', {}, 'Edits accepted'), h('dd', {}, String(accepted.length))),
    ),
    h(
      'details',
      {},
      h('summary', {}, 'The whole result (JSON)'),
      h('pre', { class: 'result' }, JSON.stringify(result, null, 2)),
    ),
  );
}

async function renderJob(main, jobId, signal) {
  const summary = h('section', { class: 'job-summary' });
  const history = h('ol', { class: 'job-history small' });
  replaceContent(
    main,
    h('p', {}, h('a', { href: '#/jobs' }, '← All jobs')),
    h('h1', {}, 'Job ', h('code', {}, jobId)),
    summary,
    h('h2', {}, 'Progress reported'),
    history,
  );
  const cancelMessage = h('div', { class: 'cancel-message' });
  const cancel = async (event) => {
    event.target.disabled = true;
    replaceContent(cancelMessage, h('p', { class: 'muted' }, 'Cancelling…'));
    try {
      const response = await request(`/v1/jobs/${encodeURIComponent(jobId)}`, { method: 'DELETE', signal });
      const answer = await response.json();
      replaceContent(cancelMessage);
      show(answer.job ?? answer);
    } catch (error) {
      if (error?.name === 'AbortError') return;
      replaceContent(cancelMessage, errorBox(error, 'The job was not cancelled'));
      event.target.disabled = false;
    }
  };
  const show = (job) => {
    summary.dataset.status = job.status;
    replaceContent(
      summary,
      FINISHED.has(job.status) ? null : h('button', { type: 'button', class: 'cancel', onclick: cancel }, 'Cancel job'),
      cancelMessage,
      h(
        'dl',
        { class: 'facts' },
        h('div', {}, h('dt', {}, 'Status'), h('dd', {}, statusBadge(job.status))),
        h('div', {}, h('dt', {}, 'Kind'), h('dd', {}, job.kind ?? '–')),
        h('div', {}, h('dt', {}, 'Created'), h('dd', {}, formatTime(job.createdAt))),
        h('div', {}, h('dt', {}, 'Started'), h('dd', {}, formatTime(job.startedAt))),
        h('div', {}, h('dt', {}, 'Finished'), h('dd', {}, formatTime(job.finishedAt))),
      ),
      progressView(job),
      h('details', {}, h('summary', {}, 'Options'), h('pre', {}, JSON.stringify(job.options ?? {}, null, 2))),
      job.error
        ? errorBox(
            new Error(typeof job.error === 'string' ? job.error : JSON.stringify(job.error)),
            job.status === 'cancelled' ? 'The job was cancelled' : 'The job failed',
          )
        : null,
      job.result !== undefined && job.result !== null ? resultView(job.result) : null,
    );
    const progress = job.progress ?? {};
    const line = [progress.phase, progress.message].filter(Boolean).join(': ');
    if (line && history.lastElementChild?.dataset.line !== line) {
      history.append(h('li', { dataset: { line } }, line));
      while (history.children.length > 200) history.firstElementChild.remove();
    }
  };
  const answer = await getJson(`/v1/jobs/${encodeURIComponent(jobId)}`, signal);
  const job = answer.job ?? answer;
  show(job);
  if (FINISHED.has(job.status)) return;
  // The stream outlives the render: it updates the page until the job ends or the user leaves.
  followJob(jobId, show, signal).catch((error) => {
    if (error?.name !== 'AbortError') summary.append(errorBox(error, 'Live progress stopped'));
  });
}
