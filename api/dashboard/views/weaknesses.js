import { getJson } from '../api.js';
import { formatCount, formatTime, h, mechanismTitle, replaceContent } from '../dom.js';

/**
 * The weakness clusters of the latest mining run, best first, as cards; a cluster opens on its evidence, and each
 * piece of evidence opens the run viewer at the cited step.
 */
export async function renderWeaknesses(main, { id, signal }) {
  const { clusters } = await getJson('/v1/weaknesses', signal);
  if (id !== undefined) {
    const cluster = clusters.find((candidate) => candidate.cluster_id === id);
    if (!cluster) throw new Error(`The latest mining has no cluster ${id}; it may have been mined again since.`);
    replaceContent(main, clusterDetail(cluster));
    return;
  }
  if (clusters.length === 0) {
    replaceContent(
      main,
      h('h1', {}, 'Weakness clusters'),
      h(
        'p',
        { class: 'empty' },
        'No clusters yet. Mine the failed runs with ',
        h('code', {}, 'selfharness mine'),
        ' and reload.',
      ),
    );
    return;
  }
  const first = clusters[0];
  replaceContent(
    main,
    h('h1', {}, 'Weakness clusters'),
    h(
      'p',
      { class: 'muted' },
      `${clusters.length} cluster${clusters.length === 1 ? '' : 's'} from the latest mining (${first.mode} mode, ${formatTime(first.created_at)}), ranked by score: criticality, runs and task spread.`,
    ),
    h('ol', { class: 'cards' }, clusters.map(clusterCard)),
  );
}

function facts(card) {
  return h(
    'dl',
    { class: 'facts' },
    h('div', {}, h('dt', {}, 'Runs'), h('dd', { class: 'runs' }, formatCount(card.runCount))),
    h('div', {}, h('dt', {}, 'Tasks'), h('dd', { class: 'tasks' }, formatCount(card.taskCount))),
    h('div', {}, h('dt', {}, 'Failures'), h('dd', {}, formatCount(card.failureCount))),
    h('div', {}, h('dt', {}, 'Score'), h('dd', { class: 'score' }, card.score.toFixed(3))),
    h('div', {}, h('dt', {}, 'Criticality'), h('dd', {}, card.criticality)),
  );
}

function mechanismList(card) {
  return h(
    'ul',
    { class: 'chips mechanisms' },
    card.mechanisms.map((entry) =>
      h('li', { title: entry.mechanism }, `${mechanismTitle(entry.mechanism)} × ${entry.failures}`),
    ),
  );
}

function clusterCard(cluster) {
  const card = cluster.card;
  return h(
    'li',
    { class: 'card cluster', dataset: { cluster: cluster.cluster_id } },
    h(
      'a',
      { class: 'card-link', href: `#/weaknesses/${encodeURIComponent(cluster.cluster_id)}` },
      h('span', { class: 'rank' }, `#${card.rank}`),
      h('h2', { class: 'label' }, card.label),
    ),
    mechanismList(card),
    facts(card),
    h('p', { class: 'muted small' }, 'Models: ', h('span', { class: 'models' }, card.models.join(', ') || '–')),
    h('p', { class: 'muted small' }, 'Tasks: ', card.tasks.join(', ')),
  );
}

function clusterDetail(cluster) {
  const card = cluster.card;
  return h(
    'section',
    { class: 'cluster-detail', dataset: { cluster: cluster.cluster_id } },
    h('p', {}, h('a', { href: '#/weaknesses' }, '← All clusters')),
    h('h1', {}, h('span', { class: 'rank' }, `#${card.rank}`), ' ', card.label),
    mechanismList(card),
    facts(card),
    h('p', { class: 'muted small' }, `Models: ${card.models.join(', ')} · Tasks: ${card.tasks.join(', ')}`),
    h(
      'p',
      { class: 'muted small' },
      `Passing runs on these tasks that a fix must keep passing: ${card.preserve.passingRunCount}`,
      card.preserve.passingRuns.length > 0 ? ' (' : '',
      card.preserve.passingRuns.map((run, index) => [
        index > 0 ? ', ' : '',
        h('a', { href: `#/runs/${encodeURIComponent(run.runId)}` }, run.runId),
      ]),
      card.preserve.passingRuns.length > 0 ? ')' : '',
    ),
    h('h2', {}, `Evidence (${card.evidence.length} of ${card.runCount} runs)`),
    h(
      'ol',
      { class: 'evidence-list' },
      card.evidence.map((evidence, index) => evidenceItem(cluster, evidence, index)),
    ),
    h(
      'p',
      { class: 'muted small' },
      'Every run in the cluster: ',
      card.runIds.map((runId, index) => [
        index > 0 ? ', ' : '',
        h('a', { href: `#/runs/${encodeURIComponent(runId)}` }, runId),
      ]),
    ),
  );
}

function evidenceItem(cluster, evidence, index) {
  const step = evidence.firstStep ?? evidence.steps[0];
  const parameters = new URLSearchParams({ cluster: cluster.cluster_id, evidence: String(index) });
  if (step !== undefined && step !== null) parameters.set('step', String(step));
  const steps =
    evidence.steps.length > 0
      ? `step${evidence.steps.length === 1 ? '' : 's'} ${evidence.steps.join(', ')}`
      : 'no step cited';
  return h(
    'li',
    { class: 'evidence' },
    h(
      'a',
      {
        class: 'evidence-link',
        href: `#/runs/${encodeURIComponent(evidence.runId)}?${parameters}`,
        dataset: { run: evidence.runId, step: step ?? '' },
      },
      h('span', { class: 'reference' }, `${evidence.runId} · ${steps}`),
      h(
        'span',
        { class: 'muted small' },
        ` ${evidence.task} · ${evidence.model} · ${mechanismTitle(evidence.mechanism)}`,
      ),
      h('pre', { class: 'excerpt' }, evidence.excerpt),
      evidence.terminalCause ? h('p', { class: 'small' }, `Diagnosis: ${evidence.terminalCause}`) : null,
    ),
  );
}
