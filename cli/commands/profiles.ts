import type { Command } from 'commander';
import { type Correction, computeProfiles, type ModelProfiles } from '../../analytics/profiles.js';
import { UserError } from '../../core/index.js';
import { type GlobalOptions, withLog } from '../context.js';
import { formatTable, printJson } from '../output.js';

interface ProfilesCommandOptions {
  models?: string;
  split?: string;
  dataset?: string;
  alpha: string;
  correction: string;
}

export function registerProfiles(program: Command, globals: () => GlobalOptions): void {
  program
    .command('profiles')
    .description(
      "Compare models' failure mechanisms: the rate of each among a model's failed runs (95% Wilson intervals), and the mechanisms where models differ significantly",
    )
    .option('--models <list>', 'comma-separated models to compare (default: every model with failed runs)')
    .option('--split <split>', 'only runs of this split')
    .option('--dataset <dataset>', 'only runs of this dataset')
    .option('--alpha <level>', 'significance level after correction', '0.05')
    .option('--correction <method>', 'holm (family-wise error) or bh (false discovery rate)', 'holm')
    .action(async (options: ProfilesCommandOptions) => {
      const global = globals();
      const alpha = Number(options.alpha);
      if (!(alpha > 0 && alpha < 1)) throw new UserError(`--alpha must be between 0 and 1, not "${options.alpha}".`);
      if (options.correction !== 'holm' && options.correction !== 'bh') {
        throw new UserError(`--correction must be holm or bh, not "${options.correction}".`);
      }
      const models = options.models
        ?.split(',')
        .map((model) => model.trim())
        .filter((model) => model !== '');
      const profiles = await withLog(
        global,
        (log) =>
          computeProfiles(log, {
            models,
            split: options.split,
            dataset: options.dataset,
            alpha,
            correction: options.correction as Correction,
          }),
        true,
      );
      if (global.json) printJson(profiles);
      else console.log(describeProfiles(profiles));
    });
}

const percent = (value: number) => `${(value * 100).toFixed(1)}%`;
const points = (value: number) => `${value >= 0 ? '+' : ''}${(value * 100).toFixed(1)}`;
const testNames: Record<string, string> = {
  'fisher-exact': "Fisher's exact test",
  'freeman-halton-exact': 'Freeman–Halton exact test',
  'chi-square': 'chi-square test',
};
const pValue = (value: number) => (value < 0.0001 ? value.toExponential(1) : value.toFixed(4));

/** The profiles as a person reads them: a table per model, then what sets the models apart. */
export function describeProfiles(profiles: ModelProfiles): string {
  if (profiles.models.length === 0) return 'No failed runs to profile.';
  const correction = profiles.correction === 'holm' ? 'Holm' : 'Benjamini–Hochberg';
  const lines = [
    `Failure profiles of ${profiles.models.length} model${profiles.models.length === 1 ? '' : 's'}: the share of each model's failed runs in which a mechanism was detected (95% Wilson interval).`,
  ];
  for (const model of profiles.models) {
    lines.push('', `${model.model}: ${model.validRuns} valid runs, ${model.failedRuns} failed`);
    const rows = model.mechanisms
      .filter((entry) => entry.runs > 0)
      .sort((left, right) => right.rate - left.rate || left.mechanism.localeCompare(right.mechanism))
      .map((entry) => ({
        mechanism: entry.mechanism,
        runs: entry.runs,
        rate: percent(entry.rate),
        '95% interval': `${percent(entry.low)} – ${percent(entry.high)}`,
      }));
    lines.push(rows.length === 0 ? '  (no mechanism detected)' : indent(formatTable(rows)));
  }
  if (profiles.models.filter((model) => model.failedRuns > 0).length < 2) {
    lines.push('', 'Comparing models needs at least two with failed runs.');
    return lines.join('\n');
  }
  lines.push(
    '',
    `Mechanisms that differ between models (${correction}-corrected over ${profiles.mechanisms.length} mechanisms, α = ${profiles.alpha}):`,
  );
  const significant = profiles.comparisons.filter((comparison) => comparison.significant);
  if (significant.length === 0) lines.push('  none: the differences seen are within what chance gives.');
  for (const comparison of significant) {
    lines.push(
      `  ${comparison.mechanism}: p = ${pValue(comparison.pValue)}, adjusted ${pValue(comparison.adjustedPValue)} (${testNames[comparison.method] ?? comparison.method})`,
    );
    for (const pair of comparison.pairs.filter((candidate) => candidate.significant)) {
      lines.push(
        `    ${pair.higher} ${percent(pair.higherRate)} vs ${pair.lower} ${percent(pair.lowerRate)}: ${points(pair.difference)} points (95% interval ${points(pair.differenceLow)} to ${points(pair.differenceHigh)}), adjusted p = ${pValue(pair.adjustedPValue)}`,
      );
    }
  }
  if (profiles.ownFailures.length > 0) {
    lines.push('', "Each model's own failures (significantly more often than in every other model compared):");
    for (const own of profiles.ownFailures) {
      lines.push(
        `  ${own.model}: ${own.mechanism} in ${percent(own.rate)} of its failed runs (next: ${own.nextModel} ${percent(own.nextRate)})`,
      );
    }
  }
  return lines.join('\n');
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}
