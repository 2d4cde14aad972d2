import type { Command } from 'commander';
import { type DiagnoseSummary, diagnoseRuns } from '../../analytics/diagnosis.js';
import { OpenAiLlm, readLlmConfig } from '../../analytics/llm.js';
import { UserError } from '../../core/index.js';
import { type GlobalOptions, withLog } from '../context.js';
import { formatTable, printJson } from '../output.js';
import { createProgress } from '../progress.js';

interface DiagnoseCommandOptions {
  model?: string;
  split?: string;
  limit?: string;
  concurrency: string;
  llmModel?: string;
}

export function registerDiagnose(program: Command, globals: () => GlobalOptions): void {
  program
    .command('diagnose')
    .description(
      'Ask a model (SELFHARNESS_LLM_BASE_URL, SELFHARNESS_LLM_MODEL, SELFHARNESS_LLM_API_KEY) for a diagnosis of each failed run; runs diagnosed before by the same prompt and model are skipped',
    )
    .option('--model <model>', 'only runs of this agent model')
    .option('--split <split>', 'only runs of this split')
    .option('--limit <n>', 'diagnose at most this many runs now')
    .option('--concurrency <n>', 'requests in flight at once', '4')
    .option('--llm-model <model>', 'the diagnosing model (default: $SELFHARNESS_LLM_MODEL)')
    .action(async (options: DiagnoseCommandOptions) => {
      const global = globals();
      const concurrency = readPositive('--concurrency', options.concurrency);
      const limit = options.limit === undefined ? undefined : readPositive('--limit', options.limit);
      const config = readLlmConfig(process.env, {
        concurrency,
        ...(options.llmModel ? { model: options.llmModel } : {}),
      });
      const llm = new OpenAiLlm(config);
      const progress = createProgress();
      const summary = await withLog(global, (log) =>
        diagnoseRuns(log, llm, {
          model: options.model,
          split: options.split,
          limit,
          concurrency,
          onProgress: (state) =>
            progress.update(
              `diagnosed ${state.done}/${state.total} runs (${state.diagnosed} stored, ${state.rejected} rejected, ${state.failedRequests} failed requests)`,
            ),
        }),
      );
      progress.done();
      if (global.json) printJson(summary);
      else console.log(describeSummary(summary, config.baseUrl));
    });
}

function readPositive(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1)
    throw new UserError(`${flag} must be a positive whole number, not "${text}".`);
  return value;
}

function describeSummary(summary: DiagnoseSummary, endpoint: string): string {
  const lines = [
    `${summary.llmModel} at ${endpoint}, prompt ${summary.promptVersion}: ${summary.failedRuns} failed runs in scope`,
    `  ${summary.diagnosed} diagnosed now, ${summary.cached} diagnosed before (not asked again), ${summary.rejected} rejected, ${summary.failedRequests} failed requests`,
  ];
  if (summary.withoutSteps > 0) lines.push(`  ${summary.withoutSteps} runs have no steps to diagnose`);
  if (summary.deferred > 0) lines.push(`  ${summary.deferred} runs left for later (--limit)`);
  if (summary.diagnoses.length > 0) {
    lines.push(
      '',
      formatTable(
        summary.diagnoses.map((diagnosis) => ({
          run: diagnosis.runId,
          criticality: diagnosis.criticality,
          mechanism: diagnosis.mechanism,
          steps: diagnosis.evidenceSteps.join(','),
          cause: diagnosis.terminalCause,
        })),
      ),
    );
  }
  for (const rejection of summary.rejections) lines.push(`rejected ${rejection.runId}: ${rejection.reason}`);
  for (const failure of summary.failures) lines.push(`failed ${failure.runId}: ${failure.reason}`);
  if (summary.rejected + summary.failedRequests > 0) {
    lines.push(
      'Rejected and failed runs are diagnosed again by the next `selfharness diagnose`; rejected replies are kept (`selfharness rejects`).',
    );
  }
  return lines.join('\n');
}
