#!/usr/bin/env node
// The `selfharness` command: loads the TypeScript sources through tsx, so there is no build step.
import { register } from 'tsx/esm/api';

// Output piped into `head` and the like: stop quietly when the reader has gone.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

register();
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv);
