import type { ShellSession } from '../contracts.js';
import type { Middleware } from '../runtime/middleware.js';

/**
 * Runs every shell call in one long-lived shell, so the working directory, exported variables, activated
 * environments and shell functions survive from one call to the next (without it each call starts afresh, and an
 * agent that `cd`s or `export`s in one call loses that in the next).
 */
export function persistentShell(): Middleware {
  let shellSession: ShellSession | undefined;
  return {
    name: 'persistent-shell',
    async start(session) {
      const opened = await session.workspace.openSession();
      shellSession = opened;
      session.shell = (command, options) => opened.run(command, options);
    },
    async end() {
      await shellSession?.close();
      shellSession = undefined;
    },
  };
}
