import { type EventLog, type ProposalCreated, UserError } from '../core/index.js';

/**
 * The proposals the validator judges, read from their `proposal-create` events. A proposal names its base version,
 * its patch and the weakness it targets; everything the validator needs to replay, try and promote it.
 */

export type Proposal = ProposalCreated['data'];

const FIND_PROPOSALS = `
SELECT CAST(data AS VARCHAR) AS data
FROM events
WHERE type = 'proposal-create' AND starts_with(data->>'proposalId', $1)
ORDER BY seq`;

const LIST_PROPOSALS = `
SELECT CAST(data AS VARCHAR) AS data FROM events WHERE type = 'proposal-create' ORDER BY seq`;

/** Finds a proposal by its id or a unique prefix of it. */
export async function loadProposal(log: EventLog, reference: string): Promise<Proposal> {
  if (!/^[0-9A-Za-z_.:-]{1,128}$/.test(reference))
    throw new UserError(
      `Proposal ${JSON.stringify(reference)} is not a proposal id: list proposals with \`selfharness validations\` or \`selfharness sql "SELECT data->>'proposalId' FROM events WHERE type = 'proposal-create'"\``,
    );
  const rows = await log.query<{ data: string }>(FIND_PROPOSALS, [reference]);
  const proposals = [
    ...new Map(rows.map((row) => JSON.parse(row.data) as Proposal).map((p) => [p.proposalId, p])).values(),
  ];
  const exact = proposals.find((proposal) => proposal.proposalId === reference);
  if (exact) return exact;
  if (proposals.length === 0)
    throw new UserError(`Unknown proposal ${reference}: no proposal-create event has that id. Propose edits first.`);
  if (proposals.length > 1)
    throw new UserError(
      `Proposal prefix ${reference} is ambiguous: it matches ${proposals.map((proposal) => proposal.proposalId).join(', ')}; give more characters`,
    );
  return proposals[0]!;
}

/** Every proposal in the log, oldest first (each once). */
export async function listProposals(log: EventLog): Promise<Proposal[]> {
  const rows = await log.query<{ data: string }>(LIST_PROPOSALS);
  const byId = new Map<string, Proposal>();
  for (const row of rows) {
    const proposal = JSON.parse(row.data) as Proposal;
    if (!byId.has(proposal.proposalId)) byId.set(proposal.proposalId, proposal);
  }
  return [...byId.values()];
}
