import { runProcess } from '../../ops/run.js';

/**
 * The `notifier` role alone (services/runtime/roles.ts): notifications for offline members; one active, others stand by.
 * `node --import tsx services/notifier/main.ts` (compiled: `node dist/services/notifier/main.js`),
 * configured like any Parley process (README, "Configuration"; NATS_URL and
 * DATABASE_URL name the shared servers). Same as `parley start --roles notifier`.
 */
await runProcess({ roles: ['notifier'], exitWithParent: process.argv.includes('--exit-with-parent'), service: 'notifier' });
