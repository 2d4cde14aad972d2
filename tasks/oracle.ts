import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { TrialAgent, TrialContext, TrialOutcome } from '../harness/index.js';

/** The model name of the oracle in the log. */
export const ORACLE_MODEL = 'oracle';

const OUTPUT_LIMIT_BYTES = 256 * 1024;

/**
 * The suite's own check: an agent that runs each task's reference solution, `solution/solve.sh`, in the workspace.
 * The script is copied in for that one command and removed after it, and the run is logged as one agent step with a
 * shell call and its result, like any other agent's. Every task must pass with it.
 */
export function createOracleAgent(): TrialAgent {
  return {
    model: ORACLE_MODEL,
    async solve(context: TrialContext): Promise<TrialOutcome> {
      const { runId, task, workspace } = context;
      const folderName = existsSync(join(workspace.hostPath, 'solution')) ? '.selfharness-solution' : 'solution';
      const folder = join(workspace.hostPath, folderName);
      const command = `bash ${folderName}/solve.sh`;
      await context.emit([
        {
          id: `${runId}#step-1`,
          runId,
          type: 'step-create',
          time: new Date().toISOString(),
          data: { step: 1, role: 'agent', message: 'Run the reference solution.', model: ORACLE_MODEL },
        },
        {
          id: `${runId}#call-1`,
          runId,
          type: 'tool-call',
          time: new Date().toISOString(),
          data: { step: 1, callId: 'call-1', tool: 'shell', arguments: { command }, command },
        },
      ]);
      mkdirSync(folder, { recursive: true });
      copyFileSync(join(task.directory, 'solution', 'solve.sh'), join(folder, 'solve.sh'));
      let result: Awaited<ReturnType<typeof workspace.exec>>;
      try {
        result = await workspace.exec(command, {
          timeoutMs: task.agentTimeoutSec * 1000,
          maxOutputBytes: OUTPUT_LIMIT_BYTES,
        });
      } finally {
        rmSync(folder, { recursive: true, force: true });
      }
      await context.emit([
        {
          id: `${runId}#result-1`,
          runId,
          type: 'tool-result',
          time: new Date().toISOString(),
          data: {
            step: 1,
            callId: 'call-1',
            output: result.output,
            ...(result.exitCode === null ? {} : { exitCode: result.exitCode }),
            ...(result.timedOut ? { error: 'timed out' } : {}),
          },
        },
      ]);
      if (result.timedOut) return { finished: false, stopReason: 'wall_time' };
      return { finished: true };
    },
  };
}
