import type { ProposalBrief } from './brief.js';
import type { Candidate, RejectedCandidate } from './candidate.js';

/**
 * What every proposer implements: from a brief to at most `count` checked, diverse candidate edits, plus every edit
 * it considered and refused, with the reason. Zero candidates is a valid answer (nothing worth changing).
 */
export interface ProposeOptions {
  /** The most candidates wanted. */
  readonly count: number;
}

export interface ProposeResult {
  readonly candidates: Candidate[];
  readonly rejected: RejectedCandidate[];
}

export interface Proposer {
  /** Recorded with each proposal: `rules`, `llm:<model>`. */
  readonly name: string;
  propose(brief: ProposalBrief, options: ProposeOptions): Promise<ProposeResult>;
}
