import { runProcess } from '../../ops/run.js';

/**
 * The `membership` role alone (services/runtime/roles.ts): the membership reactor (membership changes onto each member's subject); one active, others stand by.
 * `node --import tsx services/membership/main.ts` (compiled: `node dist/services/membership/main.js`),
 * configured like any Parley process (README, "Configuration"; NATS_URL and
 * DATABASE_URL name the shared servers). Same as `parley start --roles membership`.
 */
await runProcess({ roles: ['membership'], exitWithParent: process.argv.includes('--exit-with-parent'), service: 'membership' });
