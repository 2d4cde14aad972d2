import { type JsonCompletion, type Llm, LlmRequestError } from '../analytics/llm.js';
import type { ProposalBrief } from './brief.js';
import { checkCandidates, selectDiverse } from './candidate.js';
import { ProposalReply, renderBriefPrompt } from './prompt.js';
import type { ProposeOptions, ProposeResult, Proposer } from './proposer.js';

/**
 * A model as the proposer: the brief goes out as a prompt, the answer comes back as JSON and every candidate in it is
 * checked like any other (shape, size, surfaces, a valid and changed harness, no repeat of a rejected edit). An answer
 * that is no JSON of the expected shape is one rejection with the model's reason and text; a bad candidate is
 * rejected alone, and the good ones in the same answer are kept.
 */
export class LlmProposer implements Proposer {
  readonly name: string;

  constructor(
    private readonly llm: Llm,
    private readonly options: { maxTokens?: number; temperature?: number } = {},
  ) {
    this.name = `llm:${llm.model}`;
  }

  async propose(brief: ProposalBrief, options: ProposeOptions): Promise<ProposeResult> {
    if (options.count < 1) return { candidates: [], rejected: [] };
    const prompt = renderBriefPrompt(brief, options.count);
    let reply: JsonCompletion<ProposalReply>;
    try {
      reply = await this.llm.completeJson(
        {
          system: prompt.system,
          user: prompt.user,
          schemaName: 'harness_proposals',
          temperature: this.options.temperature ?? 0,
          maxTokens: this.options.maxTokens ?? 4000,
        },
        ProposalReply,
      );
    } catch (error) {
      // The endpoint failed past its retries: this round proposes nothing, and says why; the loop goes on.
      if (!(error instanceof LlmRequestError)) throw error;
      return {
        candidates: [],
        rejected: [{ reason: `no answer: ${error.message} (after ${error.attempts} attempts)`, raw: '' }],
      };
    }
    if (!reply.ok)
      return { candidates: [], rejected: [{ reason: `malformed answer: ${reply.reason}`, raw: reply.content }] };
    const { candidates, rejected } = checkCandidates(brief, reply.value.candidates);
    return { candidates: selectDiverse(candidates, options.count), rejected };
  }
}
