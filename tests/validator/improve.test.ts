import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenAiLlm, readLlmConfig } from '../../analytics/llm.js';
import { installAnalytics } from '../../analytics/schema.js';
import { EventLog } from '../../core/index.js';
import {
  checkCandidates,
  LlmProposer,
  type ProposalBrief,
  type ProposeResult,
  type Proposer,
} from '../../proposer/index.js';
import { findBubblewrap, openSandbox, type Sandbox } from '../../tasks/index.js';
import { improve, listValidations, renderHtmlReport, renderMarkdownReport } from '../../validator/index.js';
import { chatReply, type OpenAiTestServer, startOpenAiServer } from '../support/openai-server.js';

/** Held-in tasks on which sim:late-artifacts (seed 0) fails several, so mining finds clusters to propose for. */
const TASKS = {
  'held-in': [
    'archive-merge-csv',
    'dedupe-emails',
    'fix-spaces-in-names',
    'ini-update',
    'release-checksums',
    'count-words',
  ],
  'held-out': ['file-manifest', 'extract-errors'],
  sealed: [],
};

/** A proposer for tests: offers fixed drafts for the top cluster and checks them as every proposer must. */
class ScriptedProposer implements Proposer {
  readonly name = 'scripted';
  briefs: ProposalBrief[] = [];
  constructor(private readonly drafts: (clusterId: string) => unknown[]) {}
  async propose(brief: ProposalBrief): Promise<ProposeResult> {
    this.briefs.push(brief);
    const cluster = brief.clusters[0];
    if (!cluster) return { candidates: [], rejected: [] };
    return checkCandidates(brief, this.drafts(cluster.clusterId));
  }
}

const harmfulRule = (clusterId: string) => ({
  clusterId,
  surface: '/rules',
  patch: [
    {
      op: 'add',
      path: '/rules/-',
      value: {
        id: 'hurry-up',
        trigger: { on: 'tool-call', tool: '^shell$', count: 3 },
        action: { type: 'block', reason: 'Finish as soon as possible without checking anything.' },
      },
    },
  ],
  expectedEffect: 'The agent finishes sooner.',
  preserve: 'Nothing.',
  risk: 'high',
});

const silentInstruction = (clusterId: string) => ({
  clusterId,
  surface: '/instructions/recovery',
  patch: [{ op: 'replace', path: '/instructions/recovery', value: 'Stay calm when a command fails.' }],
  expectedEffect: 'None that replay could see.',
  preserve: 'Everything.',
  risk: 'low',
});

describe.skipIf(findBubblewrap() === undefined)('improve', () => {
  let folder: string;
  let sandbox: Sandbox;
  const logs: EventLog[] = [];
  const openLog = async (name: string) => {
    const log = await EventLog.open(join(folder, `${name}.duckdb`));
    await installAnalytics(log.database);
    logs.push(log);
    return log;
  };

  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'selfharness-improve-'));
    sandbox = await openSandbox();
  });
  afterAll(() => {
    for (const log of logs) log.close();
    rmSync(folder, { recursive: true, force: true });
  });

  it('rejects a harmful candidate at the gate, and screens out a candidate that never fires without running trials for it', async () => {
    const log = await openLog('harmful');
    const proposer = new ScriptedProposer((clusterId) => [harmfulRule(clusterId), silentInstruction(clusterId)]);
    const result = await improve(log, {
      model: 'sim:late-artifacts',
      iterations: 1,
      candidates: 2,
      proposer,
      attempts: 1,
      seed: 0,
      concurrency: 2,
      taskIds: TASKS,
      // The harmful rule fires on every run with three shell calls, passing ones too: let it through to the gate.
      maxPassingFireRate: 1,
      trials: { sandbox },
    });
    const [iteration] = result.iterations;
    expect(iteration!.candidates).toHaveLength(2);
    const harmful = iteration!.candidates.find((candidate) => candidate.surface === '/rules')!;
    const silent = iteration!.candidates.find((candidate) => candidate.surface === '/instructions/recovery')!;

    expect(harmful.screening.decision).toBe('accepted');
    expect(harmful.gate?.decision).toBe('rejected');
    expect(harmful.gate!.heldIn.deltaPoints).toBeLessThan(0);
    expect(harmful.gate!.reasons.join(' ')).toMatch(/Paper rule not met|Per-task regression/);

    expect(silent.screening.decision).toBe('screened-out');
    expect(silent.screening.reasons.join(' ')).toContain('Never fires on its target');
    expect(silent.gate).toBeUndefined();
    const runsOfSilent = await log.query<{ n: bigint }>('SELECT count(*) AS n FROM runs WHERE harness_version = $1', [
      silent.versionId ?? (await resultVersionOf(log, silent.proposalId)),
    ]);
    expect(Number(runsOfSilent[0]!.n)).toBe(0);

    // Nothing was promoted: the harness stays as it was, and the decisions are events.
    expect(result.finalVersionId).toBe(result.initialVersionId);
    const decisions = await listValidations(log);
    expect(decisions.map((decision) => [decision.proposalId, decision.stage, decision.decision]).sort()).toEqual(
      [
        [harmful.proposalId, 'gate', 'rejected'],
        [harmful.proposalId, 'replay', 'accepted'],
        [silent.proposalId, 'replay', 'screened-out'],
      ].sort(),
    );
    // The proposer saw held-in runs only.
    for (const cluster of proposer.briefs[0]!.clusters)
      for (const task of cluster.tasks) expect(TASKS['held-in']).toContain(task);

    // The report names both and their fate.
    const markdown = renderMarkdownReport(result);
    expect(markdown).toContain(harmful.proposalId);
    expect(markdown).toContain('screened-out');
    expect(markdown).toContain('no claim about real models');
    const html = renderHtmlReport(result);
    expect(html).toContain('<svg');
    expect(html).not.toMatch(/<script|<link|https?:\/\//);

    // Run again: everything comes from the log.
    const again = await improve(log, {
      model: 'sim:late-artifacts',
      iterations: 1,
      candidates: 2,
      proposer,
      attempts: 1,
      seed: 0,
      taskIds: TASKS,
      maxPassingFireRate: 1,
      trials: { sandbox },
    });
    expect(again.trialsRun).toBe(0);
    expect(proposer.briefs).toHaveLength(1);
    expect(again.iterations[0]!.candidates.map((candidate) => candidate.gate?.decision)).toEqual(
      iteration!.candidates.map((candidate) => candidate.gate?.decision),
    );
  }, 240_000);

  describe('with an LLM proposer on a local OpenAI-compatible server', () => {
    let server: OpenAiTestServer;
    beforeAll(async () => {
      server = await startOpenAiServer({
        chat: (request, index) => {
          if (index === 0) return chatReply('this is not JSON at all');
          // Answer about the first cluster the brief names, as a model reading the prompt would.
          const prompt = request.messages.map((message) => String(message.content ?? '')).join('\n');
          const clusterId = /### Cluster (\S+)/.exec(prompt)?.[1] ?? 'none';
          return chatReply({ candidates: llmCandidates(clusterId) });
        },
      });
    });
    afterAll(async () => {
      await server.close();
    });

    it('turns valid answers into candidates and rejects malformed ones with the reason', async () => {
      const log = await openLog('llm');
      const proposer = new LlmProposer(
        new OpenAiLlm(readLlmConfig({}, { baseUrl: server.baseUrl, model: 'scripted-model', maxRetries: 0 })),
      );
      // First job: the answer is malformed, so no candidate; the rejection is kept with its reason.
      const first = await improve(log, {
        model: 'sim:late-artifacts',
        iterations: 1,
        candidates: 2,
        proposer,
        attempts: 1,
        seed: 0,
        taskIds: TASKS,
        jobId: 'llm-malformed',
        sealed: false,
        trials: { sandbox },
      });
      expect(first.iterations[0]!.candidates).toEqual([]);
      expect(first.iterations[0]!.rejectedProposals.length).toBeGreaterThan(0);
      const rejects = await log.query<{ reason: string }>(
        "SELECT reason FROM ingest_rejects WHERE format = 'proposal'",
      );
      expect(rejects.length).toBeGreaterThan(0);
      expect(rejects[0]!.reason).toMatch(/JSON|json/);

      // Second job on the same baseline: one valid candidate and one outside the editable surfaces.
      const second = await improve(log, {
        model: 'sim:late-artifacts',
        iterations: 1,
        candidates: 2,
        proposer,
        attempts: 1,
        seed: 0,
        taskIds: TASKS,
        jobId: 'llm-valid',
        sealed: false,
        trials: { sandbox },
      });
      const [candidate] = second.iterations[0]!.candidates;
      expect(second.iterations[0]!.candidates).toHaveLength(1);
      expect(candidate).toMatchObject({ surface: '/middleware', mechanism: expect.any(String) });
      expect(candidate!.screening.decision).toBeDefined();
      expect(second.iterations[0]!.rejectedProposals.map((entry) => entry.reason).join(' ')).toContain(
        'not an editable surface',
      );
      expect(second.trialsRun).toBeGreaterThanOrEqual(0);
    }, 240_000);
  });
});

function llmCandidates(clusterId: string) {
  return [
    {
      clusterId,
      surface: '/middleware',
      patch: [{ op: 'add', path: '/middleware/-', value: { name: 'artifact-check' } }],
      expectedEffect: 'Finishing with a required file missing is refused, naming the file.',
      preserve: 'Runs that wrote their files finish as before.',
      risk: 'low',
    },
    {
      clusterId,
      surface: '/tools/shell/enabled',
      patch: [{ op: 'replace', path: '/tools/shell/enabled', value: false }],
      expectedEffect: 'No shell.',
      preserve: 'Nothing.',
      risk: 'high',
    },
  ];
}

async function resultVersionOf(log: EventLog, proposalId: string): Promise<string> {
  const { listProposals } = await import('../../proposer/index.js');
  const record = (await listProposals(log)).find((proposal) => proposal.proposalId === proposalId);
  return record?.resultVersionId ?? 'none';
}
