import { runProcess } from '../../ops/run.js';

/**
 * The `analytics` role alone (services/runtime/roles.ts): the log and delivery timing into ClickHouse; one active, others stand by.
 * `node --import tsx services/analytics/main.ts` (compiled: `node dist/services/analytics/main.js`),
 * configured like any Parley process (README, "Configuration"; NATS_URL and
 * DATABASE_URL name the shared servers). Same as `parley start --roles analytics`.
 */
await runProcess({ roles: ['analytics'], exitWithParent: process.argv.includes('--exit-with-parent'), service: 'analytics' });
