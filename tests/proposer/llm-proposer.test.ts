import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenAiLlm, readLlmConfig } from '../../analytics/llm.js';
import { LlmProposer } from '../../proposer/index.js';
import {
  chatReply,
  errorReply,
  malformedReply,
  type OpenAiTestServer,
  startOpenAiServer,
} from '../support/openai-server.js';
import { briefOf, cardsByMechanism } from './cards.js';

let server: OpenAiTestServer;
const cards = cardsByMechanism();
const brief = briefOf([cards['tool-call-loop']!, cards['missing-dependency']!]);

beforeAll(async () => {
  server = await startOpenAiServer();
});

afterAll(async () => {
  await server.close();
});

function proposer(): LlmProposer {
  const config = readLlmConfig({}, { baseUrl: server.baseUrl, model: 'scripted-model', maxRetries: 0 });
  return new LlmProposer(new OpenAiLlm(config));
}

const loopBreaker = {
  clusterId: 'c-tool-call-loop',
  mechanism: 'tool-call-loop',
  surface: '/middleware',
  patch: [{ op: 'add', path: '/middleware/-', value: { name: 'loop-breaker', maxRepeats: 4, action: 'warn' } }],
  expectedEffect: 'The agent is warned from the 4th identical call on.',
  preserve: 'Calls with changed arguments are unaffected.',
  risk: 'low',
  rationale: 'cat notes.txt was called 5 and 6 times.',
};

const dependencyHint = {
  clusterId: 'c-missing-dependency',
  surface: '/instructions/bootstrap',
  patch: [
    {
      op: 'replace',
      path: '/instructions/bootstrap',
      value: 'Check that the programs you need exist with `command -v` before using them.',
    },
  ],
  expectedEffect: 'The agent checks its tools before relying on them.',
  preserve: 'Runs whose tools exist spend one more command.',
  risk: 'low',
};

describe('LlmProposer against an OpenAI-compatible server', () => {
  it('turns a valid answer into checked candidates, and sends the brief as the prompt', async () => {
    server.enqueue(chatReply({ candidates: [loopBreaker, dependencyHint] }));
    const result = await proposer().propose(brief, { count: 3 });
    expect(result.rejected).toEqual([]);
    expect(result.candidates.map((candidate) => [candidate.clusterId, candidate.mechanism, candidate.surface])).toEqual(
      [
        ['c-tool-call-loop', 'tool-call-loop', '/middleware'],
        ['c-missing-dependency', 'missing-dependency', '/instructions/bootstrap'],
      ],
    );
    expect(result.candidates[0]!.proposalId).toMatch(/^[0-9a-f]{12}$/);

    const request = server.chatRequests().at(-1)!;
    expect(request.response_format).toEqual({ type: 'json_object' });
    const user = String(request.messages.find((message) => message.role === 'user')?.content);
    expect(user).toContain('Propose at most 3 candidate edits');
    expect(user).toContain('c-tool-call-loop');
    expect(user).toContain('`cat notes.txt` called 6 times');
    expect(user).toContain('"maxTurns":50');
    expect(user).toContain('/instructions/*');
  });

  it('retries a failing endpoint within its limit, then proposes nothing and says why', async () => {
    const retrying = new LlmProposer(
      new OpenAiLlm(readLlmConfig({}, { baseUrl: server.baseUrl, model: 'scripted-model', maxRetries: 1 })),
    );
    for (const [first, second, pattern] of [
      [errorReply(500, 'boom'), errorReply(503, 'still down'), /^no answer: .*503.*\(after 2 attempts\)$/],
      [malformedReply(), malformedReply(), /^no answer: .*\(after 2 attempts\)$/],
    ] as const) {
      const before = server.chatRequests().length;
      server.enqueue(first);
      server.enqueue(second);
      const result = await retrying.propose(brief, { count: 3 });
      expect(server.chatRequests().length - before).toBe(2);
      expect(result.candidates).toEqual([]);
      expect(result.rejected).toEqual([{ reason: expect.stringMatching(pattern), raw: '' }]);
    }
  });

  it('rejects a malformed answer with its reason and keeps the raw text', async () => {
    server.enqueue(chatReply('Here are my ideas: {"candidates": [oops]}'));
    const result = await proposer().propose(brief, { count: 3 });
    expect(result.candidates).toEqual([]);
    expect(result.rejected).toEqual([
      {
        reason: expect.stringMatching(/^malformed answer: the reply is not valid JSON/),
        raw: 'Here are my ideas: {"candidates": [oops]}',
      },
    ]);

    server.enqueue(chatReply({ proposals: [loopBreaker] }));
    const wrongShape = await proposer().propose(brief, { count: 3 });
    expect(wrongShape.candidates).toEqual([]);
    expect(wrongShape.rejected[0]!.reason).toMatch(
      /^malformed answer: the reply does not have the expected shape: candidates/,
    );
  });

  it('rejects an out-of-surface patch naming the path, and keeps the valid candidate beside it', async () => {
    const disableShell = {
      ...loopBreaker,
      clusterId: 'c-missing-dependency',
      surface: '/tools',
      patch: [{ op: 'replace', path: '/tools/shell/enabled', value: false }],
    };
    server.enqueue(chatReply({ candidates: [disableShell, loopBreaker] }));
    const result = await proposer().propose(brief, { count: 3 });
    expect(result.candidates.map((candidate) => candidate.clusterId)).toEqual(['c-tool-call-loop']);
    expect(result.rejected).toHaveLength(1);
    expect(result.rejected[0]!.reason).toContain('operation 0 (replace /tools/shell/enabled): not an editable surface');
    expect(JSON.parse(result.rejected[0]!.raw)).toEqual(disableShell);
  });

  it('keeps at most K candidates, spread over clusters and surfaces', async () => {
    server.enqueue(chatReply({ candidates: [loopBreaker, dependencyHint] }));
    const result = await proposer().propose(brief, { count: 1 });
    expect(result.candidates.map((candidate) => candidate.clusterId)).toEqual(['c-tool-call-loop']);
  });
});
