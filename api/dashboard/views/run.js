import { getJson } from '../api.js';
import { cellText, formatCount, formatTime, h, replaceContent } from '../dom.js';

/**
 * One run, step by step: the messages, the tool calls with their outputs, and the verifier's results. Reached from a
 * cluster's evidence, it highlights the cited steps, shows the evidence in them, and scrolls to the chosen one.
 */
export async function renderRun(main, { id, parameters, signal }) {
  if (id === undefined) throw new Error('No run given: open a run from a weakness cluster’s evidence.');
  const clusterId = parameters.get('cluster');
  const [run, weaknesses] = await Promise.all([
    getJson(`/v1/runs/${encodeURIComponent(id)}`, signal),
    clusterId ? getJson('/v1/weaknesses', signal) : Promise.resolve(undefined),
  ]);
  const cluster = weaknesses?.clusters.find((candidate) => candidate.cluster_id === clusterId);
  const evidence = cluster ? findEvidence(cluster.card, id, Number(parameters.get('evidence'))) : undefined;
  const target = parameters.has('step') ? Number(parameters.get('step')) : undefined;
  const cited = new Set(evidence?.steps ?? (target === undefined ? [] : [target]));

  const callsByStep = new Map();
  for (const call of run.toolCalls) {
    if (!callsByStep.has(call.step)) callsByStep.set(call.step, []);
    callsByStep.get(call.step).push(call);
  }
  const stepNumbers = [...new Set([...run.steps.map((step) => step.step), ...callsByStep.keys()])].sort(
    (left, right) => left - right,
  );
  const stepsByNumber = new Map();
  for (const step of run.steps) {
    if (!stepsByNumber.has(step.step)) stepsByNumber.set(step.step, []);
    stepsByNumber.get(step.step).push(step);
  }

  replaceContent(
    main,
    h(
      'p',
      {},
      cluster
        ? h('a', { href: `#/weaknesses/${encodeURIComponent(cluster.cluster_id)}` }, `← Cluster #${cluster.card.rank}`)
        : h('a', { href: '#/weaknesses' }, '← Weakness clusters'),
    ),
    h(
      'h1',
      {},
      'Run ',
      h('code', {}, run.run_id),
      ' ',
      h('span', { class: `badge outcome-${run.outcome}` }, run.outcome),
    ),
    runFacts(run),
    evidence ? evidenceBanner(cluster, evidence) : null,
    h('h2', {}, `Steps (${stepNumbers.length})`),
    h(
      'ol',
      { class: 'steps' },
      stepNumbers.map((number) =>
        stepItem(number, stepsByNumber.get(number) ?? [], callsByStep.get(number) ?? [], {
          cited: cited.has(number),
          target: number === target,
          evidence: cited.has(number) ? evidence : undefined,
          cluster,
        }),
      ),
    ),
    h('h2', {}, `Verification (${run.verifications.length})`),
    verificationTable(run.verifications),
  );

  const targetElement = main.querySelector('.step.target') ?? main.querySelector('.step.cited');
  if (targetElement) {
    targetElement.scrollIntoView({ block: 'center' });
    targetElement.focus({ preventScroll: true });
  }
}

function findEvidence(card, runId, index) {
  const chosen = card.evidence[index];
  if (chosen && chosen.runId === runId) return chosen;
  return card.evidence.find((candidate) => candidate.runId === runId);
}

function runFacts(run) {
  const rows = [
    ['Task', run.task],
    ['Model', run.model],
    ['Dataset', run.dataset],
    ['Split', run.split],
    ['Harness version', run.harness_version],
    ['Attempt', run.attempt],
    ['Reward', run.reward],
    ['Failure reason', run.failure_reason],
    ['Steps', formatCount(run.step_count)],
    ['Tool calls', formatCount(run.tool_call_count)],
    ['Tokens (prompt / completion)', `${formatCount(run.prompt_tokens)} / ${formatCount(run.completion_tokens)}`],
    ['Started', formatTime(run.started_at)],
    ['Ended', formatTime(run.ended_at)],
  ].filter(([, value]) => value !== null && value !== undefined);
  return h(
    'dl',
    { class: 'facts run-facts' },
    rows.map(([name, value]) => h('div', {}, h('dt', {}, name), h('dd', {}, String(value)))),
  );
}

function evidenceBanner(cluster, evidence) {
  return h(
    'aside',
    { class: 'evidence-banner' },
    h('strong', {}, `Evidence for cluster #${cluster.card.rank}: ${cluster.card.label}`),
    h('p', { class: 'small' }, `Cited steps: ${evidence.steps.join(', ') || 'none'} · mechanism ${evidence.mechanism}`),
  );
}

/** The output text, with the first of the quotes it contains marked (the evidence excerpt, then the cited output). */
function markedOutput(text, quotes) {
  const quote = quotes.find((candidate) => candidate && text?.includes(candidate));
  if (!quote) return [text ?? ''];
  const at = text.indexOf(quote);
  return [text.slice(0, at), h('mark', {}, quote), text.slice(at + quote.length)];
}

function callItem(call, quotes) {
  let argumentsText = call.arguments;
  if (typeof argumentsText === 'string') {
    try {
      argumentsText = JSON.stringify(JSON.parse(argumentsText), null, 2);
    } catch {
      // Shown as stored.
    }
  } else if (argumentsText !== null && argumentsText !== undefined) {
    argumentsText = JSON.stringify(argumentsText, null, 2);
  }
  const exit =
    call.exit_code === null || call.exit_code === undefined
      ? null
      : h('span', { class: `badge ${call.exit_code === 0 ? 'ok' : 'bad'}` }, `exit ${call.exit_code}`);
  return h(
    'div',
    { class: 'call' },
    h(
      'div',
      { class: 'call-head' },
      h('span', { class: 'tool' }, call.tool),
      ' ',
      call.command ? h('code', { class: 'command' }, call.command) : null,
      ' ',
      exit,
    ),
    call.command ? null : h('pre', { class: 'arguments' }, argumentsText ?? ''),
    call.output_excerpt !== null && call.output_excerpt !== undefined
      ? h('pre', { class: 'output' }, markedOutput(call.output_excerpt, quotes))
      : h('p', { class: 'muted small' }, 'No output recorded.'),
    typeof call.output_chars === 'number' && call.output_excerpt && call.output_chars > call.output_excerpt.length
      ? h('p', { class: 'muted small' }, `Output cut: ${formatCount(call.output_chars)} characters in all.`)
      : null,
    call.error ? h('p', { class: 'error-text' }, `Error: ${call.error}`) : null,
  );
}

function stepItem(number, steps, calls, { cited, target, evidence, cluster }) {
  const classes = ['step', cited ? 'cited' : '', target ? 'target' : ''].filter(Boolean).join(' ');
  const evidenceCalls = new Map(
    (evidence?.calls ?? []).filter((call) => call.step === number).map((call) => [call.command, call]),
  );
  return h(
    'li',
    { class: classes, id: `step-${number}`, tabindex: '-1', dataset: { step: number } },
    h(
      'div',
      { class: 'step-head' },
      h('span', { class: 'step-number' }, `Step ${number}`),
      ' ',
      steps.map((step) => h('span', { class: 'role' }, step.role)),
    ),
    evidence
      ? h(
          'div',
          { class: 'evidence-note' },
          h('span', { class: 'small' }, `Evidence · cluster #${cluster.card.rank}`),
          h('pre', { class: 'excerpt' }, evidence.excerpt),
        )
      : null,
    steps.map((step) => [
      step.message ? h('pre', { class: 'message' }, step.message) : null,
      step.reasoning ? h('details', {}, h('summary', {}, 'Reasoning'), h('pre', {}, step.reasoning)) : null,
    ]),
    calls.map((call) => callItem(call, evidence ? [evidence.excerpt, evidenceCalls.get(call.command)?.output] : [])),
  );
}

function verificationTable(verifications) {
  if (verifications.length === 0) return h('p', { class: 'muted' }, 'No verifier results recorded for this run.');
  return h(
    'table',
    { class: 'data verifications' },
    h(
      'thead',
      {},
      h('tr', {}, h('th', {}, 'Test'), h('th', {}, 'Status'), h('th', {}, 'Message'), h('th', {}, 'Reward')),
    ),
    h(
      'tbody',
      {},
      verifications.map((verification) =>
        h(
          'tr',
          {},
          h('td', {}, verification.test_name),
          h('td', {}, h('span', { class: `badge status-${verification.status}` }, verification.status)),
          h('td', {}, h('pre', { class: 'inline' }, verification.message ?? '')),
          h('td', {}, cellText(verification.reward)),
        ),
      ),
    ),
  );
}
