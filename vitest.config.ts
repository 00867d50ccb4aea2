import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // One nats-server and one Postgres for the whole run (test/global-setup.ts).
    globalSetup: ['test/global-setup.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', '.parley/**'],
  },
});
