import { Command, CommanderError } from 'commander';
import { SelfharnessError, UserError } from '../core/index.js';
import type { GlobalOptions } from './context.js';
import { forwardToServer, isRunningInServer } from './remote.js';

type Registrar = (program: Command, globals: () => GlobalOptions) => void;

/**
 * Each command's module, by the command names it registers. A module is loaded only when one of its commands runs
 * (all of them for help or an unknown name): the heavy ones pull in model runtimes and SDKs, and startup stays fast.
 */
const commandModules: readonly { names: readonly string[]; load: () => Promise<Registrar> }[] = [
  { names: ['demo'], load: async () => (await import('./commands/demo.js')).registerDemo },
  { names: ['diagnose'], load: async () => (await import('./commands/diagnose.js')).registerDiagnose },
  { names: ['export'], load: async () => (await import('./commands/export.js')).registerExport },
  { names: ['harness'], load: async () => (await import('./commands/harness.js')).registerHarness },
  { names: ['improve'], load: async () => (await import('./commands/improve.js')).registerImprove },
  { names: ['ingest'], load: async () => (await import('./commands/ingest.js')).registerIngest },
  { names: ['mine'], load: async () => (await import('./commands/mine.js')).registerMine },
  { names: ['sql', 'rejects', 'status'], load: async () => (await import('./commands/query.js')).registerQuery },
  { names: ['rebuild'], load: async () => (await import('./commands/rebuild.js')).registerRebuild },
  { names: ['serve'], load: async () => (await import('./commands/serve.js')).registerServe },
  { names: ['run'], load: async () => (await import('./commands/run.js')).registerRun },
  { names: ['profiles'], load: async () => (await import('./commands/profiles.js')).registerProfiles },
  { names: ['propose', 'proposals'], load: async () => (await import('./commands/propose.js')).registerPropose },
  {
    names: ['validations', 'replay', 'promote', 'harness-head', 'rollback'],
    load: async () => (await import('./commands/validations.js')).registerValidations,
  },
];

/** The command named in `argv` (after the global options), if any. */
function commandName(argv: readonly string[]): string | undefined {
  const args = argv.slice(2);
  for (let index = 0; index < args.length; index++) {
    const arg = args[index] as string;
    if (arg === '--db') index++;
    else if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}

export async function createProgram(argv: readonly string[] = []): Promise<Command> {
  const program = new Command('selfharness')
    .description("Turn an agent's verified failures into small, validated harness edits. The log lives in DuckDB.")
    .option('--db <path>', 'database file (default: $SELFHARNESS_DB or ./selfharness.duckdb)')
    .option('--json', 'print results as JSON')
    .showHelpAfterError()
    .exitOverride();
  const globals = () => program.opts<GlobalOptions>();
  const name = commandName(argv);
  const wanted = commandModules.filter((module) => name !== undefined && module.names.includes(name));
  for (const module of wanted.length > 0 ? wanted : commandModules) (await module.load())(program, globals);
  return program;
}

/**
 * Runs the command line and returns the exit code; errors are printed as one clear line, never a stack trace. While
 * `selfharness serve` owns the database, the command runs inside that server (`forwardToServer`): DuckDB lets one
 * process write a file, so opening it here would fail on its lock.
 */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    const name = commandName(argv);
    if (isRunningInServer() && name === 'serve') {
      throw new UserError(
        `\`selfharness serve\` cannot run inside the server (pid ${process.pid}) that already serves this database. Stop that server first (Ctrl-C in its terminal, or kill ${process.pid}).`,
      );
    }
    if (!isRunningInServer()) {
      const forwarded = await forwardToServer(argv, name);
      if (forwarded !== undefined) return forwarded;
    }
    const program = await createProgram(argv);
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
