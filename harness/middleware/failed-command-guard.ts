import { isFailedOutcome, type Middleware } from '../runtime/middleware.js';

const normalise = (command: string) => command.trim().replace(/\s+/g, ' ');

/**
 * Blocks a shell command that has already failed `maxFailures` times, quoting how it failed, so the agent looks for
 * the cause instead of retrying a broken command until the budget runs out.
 */
export function failedCommandGuard(parameters: { maxFailures: number }): Middleware {
  return {
    name: 'failed-command-guard',
    async beforeToolCall(session, call) {
      if (call.command === undefined) return undefined;
      const command = normalise(call.command);
      const failures = session.history.filter(
        (record) =>
          !record.blocked &&
          record.invocation.command !== undefined &&
          normalise(record.invocation.command) === command &&
          isFailedOutcome(record.outcome),
      );
      if (failures.length < parameters.maxFailures) return undefined;
      const last = failures[failures.length - 1]!.outcome;
      const how = last.timedOut ? 'it timed out' : `exit code ${last.exitCode ?? 'none'}`;
      const excerpt = last.output.trim().split('\n').slice(-3).join(' | ').slice(0, 300);
      return {
        block: `this exact command already failed ${failures.length} times (last time ${how}: ${excerpt || 'no output'}). Running it again will fail the same way: find the cause first, or run a different command.`,
      };
    },
  };
}
