import { canonicalJson } from '../canonical-json.js';
import type { Middleware } from '../runtime/middleware.js';

/**
 * Stops an agent that makes the same call with the same arguments again and again: from the `maxRepeats`-th
 * identical call among the recent ones, the call is blocked (or runs with a warning), and the model is told that
 * repeating it will not change the result.
 */
export function loopBreaker(parameters: { maxRepeats: number; action: 'warn' | 'block' }): Middleware {
  const window = Math.max(10, parameters.maxRepeats * 2);
  return {
    name: 'loop-breaker',
    async beforeToolCall(session, call) {
      if (call.name === 'finish') return undefined;
      const key = `${call.name} ${canonicalJson(call.arguments)}`;
      const earlier = session.history
        .slice(-window)
        .filter((record) => `${record.invocation.name} ${canonicalJson(record.invocation.arguments)}` === key).length;
      if (earlier + 1 < parameters.maxRepeats) return undefined;
      const message = `You have made this exact ${call.name} call ${earlier + 1} times recently; repeating it will not change the result. Try a different approach.`;
      return parameters.action === 'block' ? { block: message } : { warn: message };
    },
  };
}
