import { getJson, postJson } from '../api.js';
import { cellText, errorBox, formatTime, h, replaceContent } from '../dom.js';
import { renderPatch } from '../patch.js';

/** The head's moves, read with the read-only SQL route (the API has no route of its own for them yet). */
const PROMOTIONS_SQL = `SELECT data->>'versionId' AS version_id, data->>'reason' AS reason, coalesce(time, recorded_at) AS time
FROM events WHERE type = 'harness-promote' ORDER BY seq`;

/**
 * The harness versions as a timeline with their parents; a version opens on its diff from its parent (or any other
 * version), its changelog, and the validation decisions behind its promotion.
 */
export async function renderHarness(main, { id, parameters, signal }) {
  const [{ versions }, { validations }, { proposals }, promotions] = await Promise.all([
    getJson('/v1/harness/versions', signal),
    getJson('/v1/validations', signal),
    getJson('/v1/proposals', signal),
    postJson('/v1/sql', { sql: PROMOTIONS_SQL }, signal).then(
      (response) => response.body.rows,
      () => [],
    ),
  ]);
  const heading = h('h1', {}, 'Harness versions');
  if (versions.length === 0) {
    replaceContent(
      main,
      heading,
      h(
        'p',
        { class: 'empty' },
        'No harness versions registered yet. ',
        h('code', {}, 'selfharness improve'),
        ' and ',
        h('code', {}, 'selfharness harness import FILE'),
        ' register them.',
      ),
    );
    return;
  }
  const head = promotions.at(-1)?.version_id;
  const mergedInto = new Map();
  for (const decision of validations) {
    if (decision.stage !== 'merge' || decision.decision !== 'accepted') continue;
    const versionId = decision.metrics?.versionId;
    if (typeof versionId !== 'string') continue;
    if (!mergedInto.has(versionId)) mergedInto.set(versionId, new Set());
    mergedInto.get(versionId).add(decision.proposalId);
  }
  const selected =
    versions.find((version) => version.versionId === id) ??
    (id === undefined ? ([...versions].reverse().find((version) => version.parentId) ?? versions.at(-1)) : undefined);
  if (id !== undefined && !selected) throw new Error(`Unknown harness version ${id}: pick one from the list.`);

  const timeline = h(
    'ol',
    { class: 'timeline' },
    versions.map((version) =>
      h(
        'li',
        {
          class: `version${version.versionId === selected?.versionId ? ' selected' : ''}`,
          dataset: { version: version.versionId },
        },
        h('span', { class: 'dot', 'aria-hidden': 'true' }),
        h(
          'a',
          { class: 'version-link', href: `#/harness/${version.versionId}` },
          h('code', {}, version.versionId),
          version.versionId === head ? h('span', { class: 'badge ok' }, 'current') : null,
        ),
        h('div', { class: 'muted small' }, formatTime(version.createdAt)),
        h('div', { class: 'small' }, (version.description ?? '').split('\n')[0]),
        version.parentId
          ? h(
              'div',
              { class: 'muted small' },
              'parent ',
              h('a', { href: `#/harness/${version.parentId}` }, h('code', {}, version.parentId)),
            )
          : h('div', { class: 'muted small' }, 'no parent'),
        mergedInto.has(version.versionId)
          ? h('div', { class: 'muted small' }, `promoted from ${[...mergedInto.get(version.versionId)].join(', ')}`)
          : null,
      ),
    ),
  );
  const detail = h('section', { class: 'version-detail' });
  replaceContent(
    main,
    heading,
    h(
      'p',
      { class: 'muted' },
      `${versions.length} version${versions.length === 1 ? '' : 's'}, oldest first.${head ? ' The current harness is marked.' : ''}`,
    ),
    h('div', { class: 'split' }, timeline, detail),
  );
  if (selected) {
    await renderVersion(detail, {
      version: selected,
      versions,
      base: parameters.get('base') ?? selected.parentId,
      validations,
      proposals,
      merged: mergedInto.get(selected.versionId) ?? new Set(),
      signal,
    });
  }
}

async function renderVersion(detail, { version, versions, base, validations, proposals, merged, signal }) {
  const baseVersion = versions.find((candidate) => candidate.versionId === base);
  const compare = h(
    'select',
    {
      name: 'base',
      onchange: (event) => {
        location.hash = `#/harness/${version.versionId}?base=${encodeURIComponent(event.target.value)}`;
      },
    },
    versions
      .filter((candidate) => candidate.versionId !== version.versionId)
      .map((candidate) =>
        h('option', { value: candidate.versionId, selected: candidate.versionId === base }, candidate.versionId),
      ),
  );
  let diff;
  if (baseVersion) {
    try {
      const answer = await getJson(`/v1/harness/versions/${baseVersion.versionId}/diff/${version.versionId}`, signal);
      diff = h(
        'div',
        { class: 'diff' },
        h(
          'h3',
          {},
          'Changes from ',
          h('code', {}, answer.from),
          ' to ',
          h('code', {}, answer.to),
          ` (${answer.patch.length} operation${answer.patch.length === 1 ? '' : 's'})`,
        ),
        renderPatch(answer.patch, baseVersion.spec),
      );
    } catch (error) {
      if (error?.name === 'AbortError') throw error;
      diff = errorBox(error, 'The diff could not be loaded');
    }
  } else {
    diff = h('p', { class: 'muted' }, 'This version has no parent: pick another version to compare it with.');
  }

  const tried = proposals.filter((proposal) => proposal.baseVersionId === version.versionId);
  replaceContent(
    detail,
    h('h2', {}, 'Version ', h('code', {}, version.versionId)),
    version.description ? h('pre', { class: 'changelog' }, version.description) : null,
    versions.length > 1 ? h('label', { class: 'compare' }, 'Compare with ', compare) : null,
    diff,
    h('h3', {}, 'Validation decisions behind this version'),
    merged.size === 0
      ? h('p', { class: 'muted' }, 'No promotion merged proposals into this version (it was registered directly).')
      : h(
          'div',
          { class: 'decisions' },
          [...merged].map((proposalId) => proposalBlock(proposalId, proposals, validations)),
        ),
    tried.length > 0 ? h('h3', {}, `Proposals tried on this version (${tried.length})`) : null,
    tried.length > 0
      ? h(
          'table',
          { class: 'data proposals' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['Proposal', 'Mechanism', 'Surface', 'Risk', 'Latest decision'].map((name) => h('th', {}, name)),
            ),
          ),
          h(
            'tbody',
            {},
            tried.map((proposal) => {
              const latest = validations.filter((decision) => decision.proposalId === proposal.proposalId).at(-1);
              return h(
                'tr',
                {},
                h('td', {}, h('code', {}, proposal.proposalId)),
                h('td', {}, proposal.mechanism ?? '–'),
                h('td', {}, h('code', {}, proposal.surface)),
                h('td', {}, proposal.risk),
                h('td', {}, latest ? decisionBadge(latest) : 'not decided yet'),
              );
            }),
          ),
        )
      : null,
  );
}

function decisionBadge(decision) {
  const kind = decision.decision === 'accepted' ? 'ok' : decision.decision === 'rejected' ? 'bad' : 'neutral';
  return h('span', { class: `badge ${kind}` }, `${decision.stage}: ${decision.decision}`);
}

/** Numbers and short values of the metrics, one level of nesting flattened (`heldIn.deltaPoints`). */
function metricsSummary(metrics) {
  const entries = [];
  for (const [key, value] of Object.entries(metrics ?? {})) {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [inner, innerValue] of Object.entries(value)) {
        if (typeof innerValue !== 'object' || innerValue === null) entries.push([`${key}.${inner}`, innerValue]);
      }
    } else if (!Array.isArray(value)) entries.push([key, value]);
  }
  return entries.slice(0, 8).map(([key, value]) => {
    const text = typeof value === 'number' && !Number.isInteger(value) ? value.toFixed(3) : cellText(value);
    return h('span', { class: 'metric' }, `${key} ${text}`);
  });
}

function proposalBlock(proposalId, proposals, validations) {
  const proposal = proposals.find((candidate) => candidate.proposalId === proposalId);
  const decisions = validations.filter((decision) => decision.proposalId === proposalId);
  return h(
    'article',
    { class: 'proposal', dataset: { proposal: proposalId } },
    h('h4', {}, h('code', {}, proposalId)),
    proposal
      ? h(
          'p',
          { class: 'small' },
          [
            proposal.mechanism,
            proposal.clusterId ? `cluster ${proposal.clusterId}` : undefined,
            `surface ${proposal.surface}`,
            `risk ${proposal.risk}`,
            `by ${proposal.proposer}`,
          ]
            .filter(Boolean)
            .join(' · '),
          proposal.expectedEffect ? h('span', { class: 'muted' }, ` — expected: ${proposal.expectedEffect}`) : null,
        )
      : h('p', { class: 'muted small' }, 'No proposal-create event for it in the log.'),
    h(
      'table',
      { class: 'data decisions' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['When', 'Stage', 'Decision', 'Reasons', 'Numbers'].map((name) => h('th', {}, name)),
        ),
      ),
      h(
        'tbody',
        {},
        decisions.map((decision) =>
          h(
            'tr',
            { dataset: { stage: decision.stage } },
            h('td', { class: 'small' }, formatTime(decision.time)),
            h('td', {}, decision.stage + (decision.gate ? ` (${decision.gate})` : '')),
            h('td', {}, decisionBadge(decision)),
            h(
              'td',
              {},
              h(
                'ul',
                { class: 'reasons' },
                decision.reasons.map((reason) => h('li', {}, reason)),
              ),
            ),
            h('td', { class: 'metrics' }, metricsSummary(decision.metrics)),
          ),
        ),
      ),
    ),
  );
}
