import { Command, CommanderError } from 'commander';
import { SelfharnessError, UserError } from '../core/index.js';
import { registerDemo } from './commands/demo.js';
import { registerDiagnose } from './commands/diagnose.js';
import { registerExport } from './commands/export.js';
import { registerHarness } from './commands/harness.js';
import { registerIngest } from './commands/ingest.js';
import { registerMine } from './commands/mine.js';
import { registerProfiles } from './commands/profiles.js';
import { registerPropose } from './commands/propose.js';
import { registerQuery } from './commands/query.js';
import { registerRebuild } from './commands/rebuild.js';
import { registerRun } from './commands/run.js';
import { registerValidations } from './commands/validations.js';
import type { GlobalOptions } from './context.js';

export function createProgram(): Command {
  const program = new Command('selfharness')
    .description("Turn an agent's verified failures into small, validated harness edits. The log lives in DuckDB.")
    .option('--db <path>', 'database file (default: $SELFHARNESS_DB or ./selfharness.duckdb)')
    .option('--json', 'print results as JSON')
    .showHelpAfterError()
    .exitOverride();
  const globals = () => program.opts<GlobalOptions>();
  registerDemo(program, globals);
  registerDiagnose(program, globals);
  registerExport(program, globals);
  registerHarness(program, globals);
  registerIngest(program, globals);
  registerMine(program, globals);
  registerQuery(program, globals);
  registerRebuild(program, globals);
  registerRun(program, globals);
  registerProfiles(program, globals);
  registerPropose(program, globals);
  registerValidations(program, globals);
  return program;
}

/** Runs the command line and returns the exit code; errors are printed as one clear line, never a stack trace. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = createProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (error instanceof UserError) {
      console.error(`error: ${error.message}`);
      return 2;
    }
    if (error instanceof SelfharnessError) {
      console.error(`error: ${error.message}`);
      return 1;
    }
    const message = error instanceof Error ? error.message : String(error);
    console.error(`error: ${message.split('\n')[0]}`);
    if (process.env.SELFHARNESS_DEBUG) console.error(error);
    else console.error('(set SELFHARNESS_DEBUG=1 for details)');
    return 1;
  }
}
