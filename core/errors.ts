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
