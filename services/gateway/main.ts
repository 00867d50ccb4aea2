import { runProcess } from '../../ops/run.js';

/**
 * The `gateway` role alone (services/runtime/roles.ts): the HTTP and WebSocket edge with command handling; start as many as you like.
 * `node --import tsx services/gateway/main.ts` (compiled: `node dist/services/gateway/main.js`),
 * configured like any Parley process (README, "Configuration"; NATS_URL and
 * DATABASE_URL name the shared servers). Same as `parley start --roles gateway`.
 */
await runProcess({ roles: ['gateway'], exitWithParent: process.argv.includes('--exit-with-parent'), service: 'gateway' });
