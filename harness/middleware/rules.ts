import type { CommandResult } from '../contracts.js';
import type { AgentSession, Middleware, ToolInvocation, ToolOutcome } from '../runtime/middleware.js';
import type { Rule } from '../spec.js';

/** Rules match against at most this much of the end of an output, so a pattern's cost stays bounded. */
const MAX_MATCHED_CHARS = 20_000;

/**
 * Declarative rules, the middleware a proposer writes: each watches tool calls, tool results or finish attempts
 * (patterns on the tool name, the command, the output; exit codes; a count), and acts (inject a message, block the
 * call, run a check command, refuse finish). Rules are data validated by the spec's schema; they run no code of their
 * own but the check commands, which run in the workspace like the agent's.
 */
export function declarativeRules(rules: readonly Rule[]): Middleware {
  const compiled = rules.map((rule) => ({
    rule,
    tool: compile(rule.trigger.tool),
    command: compile(rule.trigger.command),
    output: compile(rule.trigger.output),
    matches: 0,
    firings: 0,
  }));
  type Compiled = (typeof compiled)[number];

  /** Counts a matching event and says whether the rule acts on it. */
  const shouldFire = (entry: Compiled): boolean => {
    entry.matches += 1;
    if (entry.matches < entry.rule.trigger.count) return false;
    if (entry.rule.trigger.maxFirings !== undefined && entry.firings >= entry.rule.trigger.maxFirings) return false;
    entry.firings += 1;
    return true;
  };
  const matchesCall = (entry: Compiled, call: ToolInvocation) =>
    test(entry.tool, call.name) && test(entry.command, call.command ?? JSON.stringify(call.arguments));
  const label = (rule: Rule) => `(rule ${rule.id})`;

  return {
    name: 'rules',
    async beforeToolCall(session, call) {
      if (call.name === 'finish') return undefined;
      const warnings: string[] = [];
      for (const entry of compiled) {
        if (entry.rule.trigger.on !== 'tool-call' || !matchesCall(entry, call) || !shouldFire(entry)) continue;
        const action = entry.rule.action;
        if (action.type === 'block') return { block: `${action.reason} ${label(entry.rule)}` };
        if (action.type === 'inject') warnings.push(`${action.message} ${label(entry.rule)}`);
        if (action.type === 'check')
          warnings.push(describeCheck(entry.rule, action, await session.runCheck(action.command)));
      }
      return warnings.length > 0 ? { warn: warnings.join('\n') } : undefined;
    },
    async afterToolCall(session, call, outcome) {
      if (call.name === 'finish') return undefined;
      const notes: string[] = [];
      for (const entry of compiled) {
        const trigger = entry.rule.trigger;
        if (trigger.on !== 'tool-result' || !matchesCall(entry, call)) continue;
        if (!test(entry.output, outcome.output) || !matchesExit(trigger.exitCode, outcome)) continue;
        if (!shouldFire(entry)) continue;
        const action = entry.rule.action;
        if (action.type === 'inject') notes.push(`${action.message} ${label(entry.rule)}`);
        if (action.type === 'check')
          notes.push(describeCheck(entry.rule, action, await session.runCheck(action.command)));
      }
      return notes.length > 0 ? { ...outcome, notes: [...outcome.notes, ...notes] } : undefined;
    },
    async beforeFinish(session: AgentSession) {
      for (const entry of compiled) {
        if (entry.rule.trigger.on !== 'finish') continue;
        const action = entry.rule.action;
        if (action.type === 'refuse-finish') {
          if (shouldFire(entry)) return { refuse: `${action.message} ${label(entry.rule)}` };
          continue;
        }
        if (action.type !== 'check') continue;
        const result = await session.runCheck(action.command);
        if (result.exitCode === 0 || !shouldFire(entry)) continue;
        return { refuse: describeCheck(entry.rule, action, result) };
      }
      return undefined;
    },
  };
}

function compile(pattern: string | undefined): RegExp | undefined {
  return pattern === undefined ? undefined : new RegExp(pattern, 'm');
}

function test(pattern: RegExp | undefined, text: string): boolean {
  return pattern === undefined || pattern.test(text.length > MAX_MATCHED_CHARS ? text.slice(-MAX_MATCHED_CHARS) : text);
}

function matchesExit(expected: 'zero' | 'nonzero' | 'any', outcome: ToolOutcome): boolean {
  if (expected === 'any') return true;
  const failed = outcome.exitCode === undefined ? outcome.error !== undefined : outcome.exitCode !== 0;
  return expected === 'nonzero' ? failed : !failed;
}

function describeCheck(rule: Rule, action: { command: string; message?: string }, result: CommandResult): string {
  const status = result.timedOut ? 'timed out' : `exit code ${result.exitCode}`;
  const output = result.output.trim().slice(-1500);
  return `${action.message ? `${action.message} ` : ''}Check \`${action.command}\` (${status})${output ? `:\n${output}` : '.'} (rule ${rule.id})`;
}
