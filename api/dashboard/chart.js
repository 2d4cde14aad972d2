import { formatPercent, h, mechanismTitle, svg } from './dom.js';

/** Colours of the mechanisms, in the order the profiles list them (they repeat past ten). */
const PALETTE = [
  '#2f6fdf',
  '#e0702a',
  '#2a9d5b',
  '#c9384b',
  '#8a5cc7',
  '#b08a1e',
  '#2aa6b5',
  '#d45aa8',
  '#6d7a86',
  '#5a8f2a',
];

/** The colour of the mechanism at `index` in the profiles' list, the same in the bars and the legend. */
export function mechanismColour(index) {
  return PALETTE[index % PALETTE.length];
}

/**
 * A grouped bar chart of failure profiles: one group per model, side by side, one bar per mechanism (its share of the
 * model's failed runs) with the 95% interval drawn as a whisker. Drawn as inline SVG from the profile numbers alone.
 */
export function profileChart(profiles) {
  const { mechanisms, models } = profiles;
  const barWidth = 22;
  const barGap = 4;
  const groupGap = 36;
  const groupWidth = Math.max(mechanisms.length, 1) * (barWidth + barGap) - barGap;
  const margin = { top: 16, right: 16, bottom: 56, left: 48 };
  const plotHeight = 240;
  const width = margin.left + models.length * groupWidth + Math.max(models.length - 1, 0) * groupGap + margin.right;
  const height = margin.top + plotHeight + margin.bottom;
  const y = (rate) => margin.top + plotHeight * (1 - rate);

  const grid = [0, 0.25, 0.5, 0.75, 1].map((tick) =>
    svg(
      'g',
      { class: 'tick' },
      svg('line', { x1: margin.left, x2: width - margin.right, y1: y(tick), y2: y(tick), class: 'grid' }),
      svg(
        'text',
        { x: margin.left - 6, y: y(tick) + 4, 'text-anchor': 'end', class: 'axis-label' },
        formatPercent(tick),
      ),
    ),
  );

  const groups = models.map((model, modelIndex) => {
    const left = margin.left + modelIndex * (groupWidth + groupGap);
    const bars = model.mechanisms.map((entry, index) => {
      const x = left + index * (barWidth + barGap);
      const centre = x + barWidth / 2;
      const description = `${model.model} · ${mechanismTitle(entry.mechanism)}: ${entry.runs} of ${model.failedRuns} failed runs = ${formatPercent(entry.rate)} (95% interval ${formatPercent(entry.low)}–${formatPercent(entry.high)})`;
      return svg(
        'g',
        { class: 'bar-item', dataset: { mechanism: entry.mechanism } },
        svg('title', {}, description),
        svg('rect', {
          class: 'bar',
          x,
          y: y(entry.rate),
          width: barWidth,
          height: Math.max(plotHeight * entry.rate, entry.rate > 0 ? 1 : 0),
          fill: mechanismColour(index),
        }),
        svg('line', { class: 'interval', x1: centre, x2: centre, y1: y(entry.high), y2: y(entry.low) }),
        svg('line', { class: 'interval', x1: centre - 5, x2: centre + 5, y1: y(entry.high), y2: y(entry.high) }),
        svg('line', { class: 'interval', x1: centre - 5, x2: centre + 5, y1: y(entry.low), y2: y(entry.low) }),
      );
    });
    return svg(
      'g',
      { class: 'bar-group', dataset: { model: model.model } },
      bars,
      svg(
        'text',
        { x: left + groupWidth / 2, y: margin.top + plotHeight + 20, 'text-anchor': 'middle', class: 'group-label' },
        model.model,
      ),
      svg(
        'text',
        { x: left + groupWidth / 2, y: margin.top + plotHeight + 38, 'text-anchor': 'middle', class: 'axis-label' },
        `${model.failedRuns} failed of ${model.validRuns} runs`,
      ),
    );
  });

  const chart = svg(
    'svg',
    {
      class: 'chart profile-chart',
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      role: 'img',
      'aria-label': 'Share of each failure mechanism among each model’s failed runs, with 95% intervals',
    },
    grid,
    svg('line', { class: 'axis', x1: margin.left, x2: margin.left, y1: margin.top, y2: margin.top + plotHeight }),
    groups,
  );
  const legend = h(
    'ul',
    { class: 'legend' },
    mechanisms.map((mechanism, index) =>
      h(
        'li',
        {},
        svg(
          'svg',
          { width: 12, height: 12, 'aria-hidden': 'true' },
          svg('rect', { width: 12, height: 12, fill: mechanismColour(index) }),
        ),
        ` ${mechanismTitle(mechanism)}`,
      ),
    ),
    h('li', { class: 'muted' }, '⟂ 95% Wilson interval'),
  );
  return h('figure', { class: 'chart-figure' }, chart, legend);
}
