/**
 * Errors named by who is at fault. Every message names the thing and the value, and says what to do next.
 */
export class SelfharnessError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The user asked for something that cannot be done as asked: a wrong path, flag or value. */
export class UserError extends SelfharnessError {}

/** Input data (a trace file, an HTTP body) is malformed. */
export class InputError extends SelfharnessError {}

/** Something in the environment failed: the database, the disk, a sandbox. */
export class SystemError extends SelfharnessError {}

/**
 * The error to show for a failure of the machine under the work (today: a full disk), or `undefined` when `error` is
 * not one. A full disk can hit any write; what is committed stays, and the log's ids make a repeat add only the rest.
 */
export function describeEnvironmentFailure(error: unknown): SystemError | undefined {
  const message = error instanceof Error ? error.message : String(error);
  if (!/No space left on device|ENOSPC|Disk quota exceeded|EDQUOT/.test(message)) return undefined;
  const file = /(?:file|open) "([^"]+)"/.exec(message)?.[1] ?? /'([^']+)'/.exec(message)?.[1];
  return new SystemError(
    `The disk is full${file ? ` (writing ${file})` : ''}: free some space or pass another --db PATH, then run the same command again. Every batch committed before stays in the log, and the same input adds only what is missing.`,
    { cause: error },
  );
}
