import { runProcess } from '../../ops/run.js';

/**
 * The `projector` role alone (services/runtime/roles.ts): the Postgres read model; one active per deployment, others stand by.
 * `node --import tsx services/projector/main.ts` (compiled: `node dist/services/projector/main.js`),
 * configured like any Parley process (README, "Configuration"; NATS_URL and
 * DATABASE_URL name the shared servers). Same as `parley start --roles projector`.
 */
await runProcess({ roles: ['projector'], exitWithParent: process.argv.includes('--exit-with-parent'), service: 'projector' });
