import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    env: { TZ: 'UTC' },
    pool: 'forks',
    // Most slow files wait on sandboxes, child processes and servers, not the CPU: two at a time halves the wall time
    // on a 2-core machine (the default is one fewer worker than cores).
    maxWorkers: 2,
  },
});
