import type { CliIO } from '../../ops/cli/command.js';
import type { TestPlatform } from './platform.js';

/** The operator CLI's IO against a test platform, as `npm run parley` would run it with that platform's environment. */
export function cliIO(p: TestPlatform, out: string[], err: string[] = []): CliIO {
  return {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: { NATS_URL: p.natsUrl, DATABASE_URL: p.databaseUrl, PARLEY_NAMESPACE: p.namespace, LOG_LEVEL: 'warn' },
    signal: new AbortController().signal,
  };
}
