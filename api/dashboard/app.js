import { currentToken, forgetToken } from './api.js';
import { errorBox, h, replaceContent } from './dom.js';
import { renderHarness } from './views/harness.js';
import { renderJobs } from './views/jobs.js';
import { renderProfiles } from './views/profiles.js';
import { renderRun } from './views/run.js';
import { renderSql } from './views/sql.js';
import { renderWeaknesses } from './views/weaknesses.js';

/**
 * Hash routing: `#/<view>/<id>?<parameters>`. Each view renders into the main element and gets a signal that aborts
 * when the user leaves it, so its requests and event streams stop.
 */
const VIEWS = {
  weaknesses: renderWeaknesses,
  runs: renderRun,
  profiles: renderProfiles,
  harness: renderHarness,
  jobs: renderJobs,
  sql: renderSql,
};

/** Which tab a view belongs to: a run is reached from the weakness clusters. */
const TABS = { runs: 'weaknesses' };

let current;

/** The parts of a hash such as `#/runs/make-1?step=2`. */
export function parseHash(hash) {
  const [path, query = ''] = hash.replace(/^#\/?/, '').split('?');
  const [view = '', ...rest] = path.split('/').map((part) => decodeURIComponent(part));
  return { view: view || 'weaknesses', id: rest.join('/') || undefined, parameters: new URLSearchParams(query) };
}

async function route() {
  current?.abort();
  const controller = new AbortController();
  current = controller;
  const { view, id, parameters } = parseHash(location.hash);
  const main = document.getElementById('view');
  for (const link of document.querySelectorAll('nav a')) {
    link.classList.toggle('active', link.dataset.view === (TABS[view] ?? view));
  }
  const render = VIEWS[view];
  if (!render) {
    replaceContent(
      main,
      errorBox(new Error(`There is no view “${view}”. Pick one from the menu above.`), 'Unknown page'),
    );
    return;
  }
  replaceContent(main, h('p', { class: 'muted' }, 'Loading…'));
  main.dataset.view = view;
  main.removeAttribute('data-ready');
  try {
    await render(main, { id, parameters, signal: controller.signal });
    if (!controller.signal.aborted) main.dataset.ready = view;
  } catch (error) {
    if (controller.signal.aborted || error?.name === 'AbortError') return;
    replaceContent(main, errorBox(error, 'This view could not be loaded'));
    main.dataset.ready = view;
  }
}

document.getElementById('forget-token').hidden = currentToken() === undefined;
document.getElementById('forget-token').addEventListener('click', () => {
  forgetToken();
  route();
});
window.addEventListener('hashchange', route);
route();
