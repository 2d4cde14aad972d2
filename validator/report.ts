import type { PatchOperation } from '../core/index.js';
import type { CandidateOutcome, ImproveResult, RateCell, SplitRates } from './improve.js';

/**
 * The report of an improve job, as markdown and as one self-contained HTML page (inline CSS and SVG, nothing loaded
 * from elsewhere). Pure: the job's result in, text out; the CLI writes the files.
 */

const SPLIT_LABELS = [
  ['heldIn', 'held-in'],
  ['heldOut', 'held-out'],
  ['sealed', 'sealed'],
] as const;

const percent = (cell: RateCell | undefined) =>
  cell === undefined ? 'n/a' : `${cell.rate.toFixed(1)}% (${cell.passed}/${cell.valid})`;
const points = (value: number) => `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(1)}`;

function describeOperation(operation: PatchOperation): string {
  const value = operation.value === undefined ? '' : ` ${JSON.stringify(operation.value)}`;
  return `${operation.op} ${operation.path}${value}`;
}

function gateCell(candidate: CandidateOutcome): string {
  if (!candidate.gate) return candidate.screening.decision === 'accepted' ? 'not tried' : 'no trials';
  const interval = (metrics: NonNullable<CandidateOutcome['gate']>['heldIn']) =>
    metrics.interval ? ` [${points(metrics.interval.low)}, ${points(metrics.interval.high)}]` : '';
  return `${candidate.gate.decision}: Δheld-in ${points(candidate.gate.heldIn.deltaPoints)}${interval(candidate.gate.heldIn)}, Δheld-out ${points(candidate.gate.heldOut.deltaPoints)}${interval(candidate.gate.heldOut)}, p = ${candidate.gate.pOneSided.toPrecision(3)}`;
}

const escapeMarkdown = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function ratesTable(before: SplitRates, after: SplitRates): string[] {
  return [
    '| split | before | after |',
    '|---|---|---|',
    ...SPLIT_LABELS.map(([key, label]) => `| ${label} | ${percent(before[key])} | ${percent(after[key])} |`),
  ];
}

/** The report as markdown. */
export function renderMarkdownReport(result: ImproveResult): string {
  const lines = [
    `# Improve job ${result.jobId}`,
    '',
    `Model \`${result.model}\`, proposer \`${result.proposer}\`, gate \`${result.gate}\`, ${result.attempts} attempt${result.attempts === 1 ? '' : 's'} per task, seed ${result.seed}. Harness \`${result.initialVersionId}\` → \`${result.finalVersionId}\`.`,
    '',
  ];
  if (result.model.startsWith('sim:'))
    lines.push(
      '> The simulated model is a test double: a seeded policy working from each task’s reference solution. Its numbers show that the loop works; they are no claim about real models.',
      '',
    );
  lines.push('## Pass rates', '', ...ratesTable(result.before, result.after), '');
  lines.push(
    `Tasks: held-in ${result.tasks['held-in'].length}, held-out ${result.tasks['held-out'].length}, sealed ${result.tasks.sealed.length} (sealed runs only for this report; the proposer never sees held-out or sealed runs).`,
    '',
  );
  lines.push('## Accepted edits', '');
  if (result.acceptedEdits.length === 0) lines.push('None.', '');
  else {
    for (const edit of result.acceptedEdits)
      lines.push(`- \`${edit.proposalId}\` (${edit.mechanism ?? 'no mechanism'}, ${edit.surface}): ${edit.summary}`);
    lines.push('');
  }
  for (const iteration of result.iterations) {
    lines.push(
      `## Iteration ${iteration.iteration}`,
      '',
      `Base \`${iteration.baseVersionId}\` → \`${iteration.resultVersionId}\`${iteration.clusters !== undefined ? `; ${iteration.clusters} weakness clusters mined` : ''}.`,
      '',
      ...ratesTable(iteration.before, iteration.after),
      '',
      '| proposal | mechanism | surface | edit | screening | gate | merge |',
      '|---|---|---|---|---|---|---|',
    );
    for (const candidate of iteration.candidates)
      lines.push(
        `| \`${candidate.proposalId}\` | ${candidate.mechanism ?? ''} | ${candidate.surface} | ${escapeMarkdown(candidate.patch.map(describeOperation).join('; ').slice(0, 200))} | ${candidate.screening.decision}: ${escapeMarkdown(candidate.screening.reasons.join(' '))} | ${escapeMarkdown(gateCell(candidate))} | ${candidate.merge ? `${candidate.merge.decision}` : ''} |`,
      );
    if (iteration.candidates.length === 0) lines.push('| (none) | | | | | | |');
    lines.push('');
    for (const rejected of iteration.rejectedProposals)
      lines.push(`- rejected by the proposal checks: ${rejected.reason}`);
    if (iteration.rejectedProposals.length > 0) lines.push('');
    const gated = iteration.candidates.filter((candidate) => candidate.gate);
    for (const candidate of gated) {
      lines.push(`Gate reasons for \`${candidate.proposalId}\`:`, '');
      for (const reason of candidate.gate!.reasons) lines.push(`- ${reason}`);
      lines.push('');
    }
    if (iteration.merge) {
      lines.push(
        `Merge \`${iteration.merge.versionId}\` (${iteration.merge.proposalIds.join(', ') || 'nothing'}): re-validation ${iteration.merge.validation.decision}${iteration.merge.promoted ? ', promoted' : ', not promoted'}.`,
        '',
        '```',
        iteration.merge.changelog,
        '```',
        '',
      );
    }
    lines.push('Harness diff:', '', '```');
    if (iteration.diff.length === 0) lines.push('(no change)');
    for (const operation of iteration.diff) lines.push(describeOperation(operation));
    lines.push('```', '');
  }
  return lines.join('\n');
}

const escapeHtml = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Grouped bars: per split, before and after, 0–100%. */
function barChart(before: SplitRates, after: SplitRates, title: string): string {
  const width = 420;
  const height = 180;
  const groupWidth = (width - 40) / SPLIT_LABELS.length;
  const bars = SPLIT_LABELS.map(([key, label], index) => {
    const x = 40 + index * groupWidth;
    const bar = (cell: RateCell | undefined, offset: number, colour: string, name: string) => {
      const rate = cell?.rate ?? 0;
      const barHeight = (rate / 100) * (height - 50);
      const top = height - 30 - barHeight;
      return `<rect x="${x + offset}" y="${top}" width="${groupWidth / 3}" height="${barHeight}" fill="${colour}"><title>${label} ${name}: ${escapeHtml(percent(cell))}</title></rect><text x="${x + offset + groupWidth / 6}" y="${top - 4}" font-size="10" text-anchor="middle">${cell ? `${rate.toFixed(0)}%` : 'n/a'}</text>`;
    };
    return `${bar(before[key], groupWidth / 8, '#9aa5b1', 'before')}${bar(after[key], groupWidth / 8 + groupWidth / 3, '#2f7d4f', 'after')}<text x="${x + groupWidth / 2}" y="${height - 12}" font-size="11" text-anchor="middle">${label}</text>`;
  }).join('');
  return `<svg role="img" aria-label="${escapeHtml(title)}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}"><line x1="36" y1="${height - 30}" x2="${width}" y2="${height - 30}" stroke="#444"/>${bars}<rect x="${width - 150}" y="6" width="10" height="10" fill="#9aa5b1"/><text x="${width - 136}" y="15" font-size="11">before</text><rect x="${width - 80}" y="6" width="10" height="10" fill="#2f7d4f"/><text x="${width - 66}" y="15" font-size="11">after</text></svg>`;
}

/** Held-in and held-out pass rate per iteration (after each iteration), as lines. */
function trendChart(result: ImproveResult): string {
  const points = [
    { label: 'start', rates: result.iterations[0]?.before ?? result.before },
    ...result.iterations.map((iteration) => ({ label: `it ${iteration.iteration}`, rates: iteration.after })),
  ];
  const width = 420;
  const height = 180;
  const step = points.length > 1 ? (width - 60) / (points.length - 1) : 0;
  const y = (rate: number) => height - 30 - (rate / 100) * (height - 50);
  const line = (key: 'heldIn' | 'heldOut', colour: string) => {
    const coordinates = points.map((point, index) => `${40 + index * step},${y(point.rates[key]?.rate ?? 0)}`);
    return `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${coordinates.join(' ')}"/>${points
      .map(
        (point, index) =>
          `<circle cx="${40 + index * step}" cy="${y(point.rates[key]?.rate ?? 0)}" r="3" fill="${colour}"><title>${point.label} ${key === 'heldIn' ? 'held-in' : 'held-out'}: ${escapeHtml(percent(point.rates[key]))}</title></circle>`,
      )
      .join('')}`;
  };
  const labels = points
    .map(
      (point, index) =>
        `<text x="${40 + index * step}" y="${height - 12}" font-size="11" text-anchor="middle">${point.label}</text>`,
    )
    .join('');
  return `<svg role="img" aria-label="pass rate per iteration" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}"><line x1="36" y1="${height - 30}" x2="${width}" y2="${height - 30}" stroke="#444"/><text x="4" y="${y(100) + 4}" font-size="10">100%</text><text x="4" y="${y(50) + 4}" font-size="10">50%</text>${line('heldIn', '#1f5fa8')}${line('heldOut', '#c0392b')}${labels}<text x="${width - 150}" y="15" font-size="11" fill="#1f5fa8">held-in</text><text x="${width - 80}" y="15" font-size="11" fill="#c0392b">held-out</text></svg>`;
}

const STYLE = `body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}th,td{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f3f4f6}code,pre{font-family:ui-monospace,monospace;font-size:12px}pre{background:#f6f8fa;padding:8px;overflow-x:auto}
.note{background:#fff7e0;border-left:4px solid #e0a800;padding:8px 12px}.accepted{color:#2f7d4f;font-weight:600}
.rejected,.screened-out{color:#a23b2a}.charts{display:flex;gap:2em;flex-wrap:wrap}`;

/** The report as one HTML page with inline CSS and SVG charts. */
export function renderHtmlReport(result: ImproveResult): string {
  const rates = (before: SplitRates, after: SplitRates) =>
    `<table><tr><th>split</th><th>before</th><th>after</th></tr>${SPLIT_LABELS.map(
      ([key, label]) =>
        `<tr><td>${label}</td><td>${escapeHtml(percent(before[key]))}</td><td>${escapeHtml(percent(after[key]))}</td></tr>`,
    ).join('')}</table>`;
  const sections = result.iterations.map((iteration) => {
    const rows = iteration.candidates
      .map(
        (candidate) =>
          `<tr><td><code>${candidate.proposalId}</code></td><td>${escapeHtml(candidate.mechanism ?? '')}</td><td>${escapeHtml(candidate.surface)}</td><td><code>${escapeHtml(candidate.patch.map(describeOperation).join('\n'))}</code></td><td class="${candidate.screening.decision}">${candidate.screening.decision}<br>${escapeHtml(candidate.screening.reasons.join(' '))}</td><td class="${candidate.gate?.decision ?? ''}">${escapeHtml(gateCell(candidate))}${candidate.gate ? `<ul>${candidate.gate.reasons.map((reason) => `<li>${escapeHtml(reason)}</li>`).join('')}</ul>` : ''}</td><td>${candidate.merge ? escapeHtml(`${candidate.merge.decision}: ${candidate.merge.reasons.join(' ')}`) : ''}</td></tr>`,
      )
      .join('');
    const merge = iteration.merge
      ? `<p>Merge <code>${iteration.merge.versionId}</code>: re-validation <span class="${iteration.merge.validation.decision}">${iteration.merge.validation.decision}</span>${iteration.merge.promoted ? ', promoted' : ', not promoted'}.</p><pre>${escapeHtml(iteration.merge.changelog)}</pre>`
      : '';
    return `<h2>Iteration ${iteration.iteration}</h2><p>Base <code>${iteration.baseVersionId}</code> → <code>${iteration.resultVersionId}</code>${iteration.clusters !== undefined ? `; ${iteration.clusters} weakness clusters mined` : ''}.</p>${rates(iteration.before, iteration.after)}<table><tr><th>proposal</th><th>mechanism</th><th>surface</th><th>edit</th><th>screening</th><th>gate</th><th>merge</th></tr>${rows || '<tr><td colspan="7">no candidates</td></tr>'}</table>${iteration.rejectedProposals.map((rejected) => `<p>Rejected by the proposal checks: ${escapeHtml(rejected.reason)}</p>`).join('')}${merge}<h3>Harness diff</h3><pre>${escapeHtml(iteration.diff.map(describeOperation).join('\n') || '(no change)')}</pre>`;
  });
  const note = result.model.startsWith('sim:')
    ? '<p class="note">The simulated model is a test double: a seeded policy working from each task’s reference solution. Its numbers show that the loop works; they are no claim about real models.</p>'
    : '';
  const accepted =
    result.acceptedEdits.length === 0
      ? '<p>None.</p>'
      : `<ul>${result.acceptedEdits.map((edit) => `<li><code>${edit.proposalId}</code> (${escapeHtml(edit.mechanism ?? 'no mechanism')}, ${escapeHtml(edit.surface)}): ${escapeHtml(edit.summary)}</li>`).join('')}</ul>`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Improve job ${escapeHtml(result.jobId)}</title><style>${STYLE}</style></head><body><h1>Improve job ${escapeHtml(result.jobId)}</h1><p>Model <code>${escapeHtml(result.model)}</code>, proposer <code>${escapeHtml(result.proposer)}</code>, gate <code>${result.gate}</code>, ${result.attempts} attempt(s) per task, seed ${result.seed}. Harness <code>${result.initialVersionId}</code> → <code>${result.finalVersionId}</code>.</p>${note}<h2>Pass rates</h2><div class="charts">${barChart(result.before, result.after, 'pass rates before and after')}${trendChart(result)}</div>${rates(result.before, result.after)}<h2>Accepted edits</h2>${accepted}${sections.join('')}</body></html>`;
}
