import { getJson } from '../api.js';
import { profileChart } from '../chart.js';
import { formatPercent, formatPValue, h, mechanismTitle, replaceContent } from '../dom.js';

/**
 * Model failure profiles side by side: per model, how often each mechanism occurs among its failed runs (with the
 * 95% interval), then the per-mechanism tests across models and the failures that are one model's own.
 */
export async function renderProfiles(main, { signal }) {
  const profiles = await getJson('/v1/profiles', signal);
  const heading = h('h1', {}, 'Model failure profiles');
  if (profiles.models.length === 0) {
    replaceContent(
      main,
      heading,
      h('p', { class: 'empty' }, 'No failed runs with a model yet: profiles compare models by their failed runs.'),
    );
    return;
  }
  const correction = profiles.correction === 'holm' ? 'Holm' : 'Benjamini–Hochberg';
  replaceContent(
    main,
    heading,
    h(
      'p',
      { class: 'muted' },
      `${profiles.models.length} model${profiles.models.length === 1 ? '' : 's'}, ${profiles.mechanisms.length} mechanism${profiles.mechanisms.length === 1 ? '' : 's'}. A bar is the share of the model’s failed runs in which the mechanism was detected; the whisker is its 95% interval.`,
    ),
    profileChart(profiles),
    ownFailures(profiles),
    h('h2', {}, 'Per-mechanism tests'),
    h(
      'p',
      { class: 'muted small' },
      `One test per mechanism across the models, p-values corrected for the number of mechanisms (${correction}); significant at α = ${profiles.alpha} after correction. Pairwise differences are tested only behind a significant overall test.`,
    ),
    testTable(profiles),
    h('h2', {}, 'Rates'),
    rateTable(profiles),
  );
}

function ownFailures(profiles) {
  if (profiles.ownFailures.length === 0) {
    return h(
      'p',
      { class: 'muted' },
      profiles.models.length < 2
        ? 'One model only: nothing to compare it with.'
        : 'No mechanism occurs significantly more often in one model’s failures than in every other model’s.',
    );
  }
  return h(
    'ul',
    { class: 'own-failures' },
    profiles.ownFailures.map((own) =>
      h(
        'li',
        {},
        h('strong', {}, own.model),
        ` fails by ${mechanismTitle(own.mechanism)} in ${formatPercent(own.rate)} of its failed runs (next: ${own.nextModel}, ${formatPercent(own.nextRate)}).`,
      ),
    ),
  );
}

function testTable(profiles) {
  if (profiles.comparisons.length === 0) {
    return h('p', { class: 'muted' }, 'Tests need at least two models with failed runs.');
  }
  return h(
    'table',
    { class: 'data tests' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['Mechanism', 'Test', 'p', 'Adjusted p', 'Significant', 'Pairwise differences'].map((name) =>
          h('th', {}, name),
        ),
      ),
    ),
    h(
      'tbody',
      {},
      profiles.comparisons.map((comparison) =>
        h(
          'tr',
          { dataset: { mechanism: comparison.mechanism } },
          h('td', {}, mechanismTitle(comparison.mechanism)),
          h('td', {}, comparison.method),
          h('td', { class: 'number' }, formatPValue(comparison.pValue)),
          h('td', { class: 'number' }, formatPValue(comparison.adjustedPValue)),
          h(
            'td',
            {},
            h(
              'span',
              { class: `badge ${comparison.significant ? 'bad' : 'neutral'}` },
              comparison.significant ? 'yes' : 'no',
            ),
          ),
          h(
            'td',
            {},
            comparison.pairs.length === 0
              ? '–'
              : comparison.pairs.map((pair) =>
                  h(
                    'div',
                    { class: 'small' },
                    `${pair.higher} − ${pair.lower}: ${formatPercent(pair.difference)} (95% ${formatPercent(pair.differenceLow)} to ${formatPercent(pair.differenceHigh)}), adjusted p ${formatPValue(pair.adjustedPValue)}${pair.significant ? ' *' : ''}`,
                  ),
                ),
          ),
        ),
      ),
    ),
  );
}

function rateTable(profiles) {
  return h(
    'table',
    { class: 'data rates' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, 'Mechanism'),
        profiles.models.map((model) => h('th', {}, `${model.model} (${model.failedRuns} failed)`)),
      ),
    ),
    h(
      'tbody',
      {},
      profiles.mechanisms.map((mechanism, index) =>
        h(
          'tr',
          {},
          h('td', {}, mechanismTitle(mechanism)),
          profiles.models.map((model) => {
            const entry = model.mechanisms[index];
            return h(
              'td',
              { class: 'number' },
              `${entry.runs} · ${formatPercent(entry.rate)} `,
              h('span', { class: 'muted small' }, `[${formatPercent(entry.low)}, ${formatPercent(entry.high)}]`),
            );
          }),
        ),
      ),
    ),
  );
}
