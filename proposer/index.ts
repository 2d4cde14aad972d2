/**
 * The public surface of the proposer: briefs built from mined weaknesses (held-in runs only), candidate edits and
 * their checks, the rule-based and the LLM proposer, and proposals as events.
 */
export {
  type BriefOptions,
  buildBrief,
  checkSplitsShown,
  type EarlierProposal,
  HIDDEN_SPLITS,
  type ProposalBrief,
  UNSPLIT,
} from './brief.js';
export {
  type Candidate,
  CandidateDraft,
  changedCharacters,
  checkCandidate,
  checkCandidates,
  concreteSurface,
  isRejectedStatus,
  MAX_CHANGED_CHARACTERS,
  MAX_PATCH_OPERATIONS,
  proposalIdOf,
  type RejectedCandidate,
  Risk,
  selectDiverse,
} from './candidate.js';
export { LlmProposer } from './llm-proposer.js';
export { PROPOSAL_PROMPT_VERSION, ProposalReply, renderBriefPrompt } from './prompt.js';
export {
  listProposals,
  type ProposalDecision,
  type ProposalRecord,
  type ProposalStatus,
  proposalEvent,
  type RecordOptions,
  recordProposals,
  recordRejectedProposals,
} from './proposals.js';
export type { ProposeOptions, ProposeResult, Proposer } from './proposer.js';
export {
  draftsForCluster,
  type EvidenceFacts,
  MECHANISM_ALTERNATIVES,
  RuleProposer,
  readEvidence,
} from './rule-proposer.js';
