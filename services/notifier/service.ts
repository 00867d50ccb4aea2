import { loadVapidKeys } from '../outbound/vapid.js';
import { ProjectionRunner } from '../projection/runner.js';
import type { LookupAll } from '../outbound/target-policy.js';
import type { Runtime } from '../runtime/runtime.js';
import type { Fence } from '../leases/single-active.js';
import { DeliveryLoop } from './delivery/loop.js';
import { DeliveryStore } from './infra/delivery-store.js';
import { openNotifierProjection } from './open-projection.js';

export interface NotifierService {
  /** The log consumers (one per shard) creating notification rows (checkpoint `notifier`); /healthz reads its lag with the projector's. */
  runner: ProjectionRunner;
  stop(): Promise<void>;
}

/**
 * Least time between two of the notifier's transactions while events keep coming. Each costs a dozen
 * statements whatever its size, and a notification waits NOTIFY_COALESCE_MS (10 s by default) for more
 * messages anyway: a quarter second more costs nobody anything, and a steady stream of 1,000 events/s is
 * applied in 4 transactions a second instead of 40 (the read model's runner keeps its 25 ms).
 */
const FLUSH_INTERVAL_MS = 250;

/**
 * Notifications for offline members (docs/notifications.md): a projection of
 * the log into notification rows (exactly once, in the checkpoint
 * transaction) and a delivery loop sending them over webhooks and Web Push.
 * One notifier per deployment is active (the `notifier` role's lease,
 * services/leases/single-active.ts); were two active, rows are still claimed
 * conditionally, but the per-device rate limits would split.
 * `options.resolve` replaces the system resolver for webhook and push hosts
 * (tests); the target policy still judges its answers.
 */
export async function startNotifier(runtime: Runtime, options: { resolve?: LookupAll; fence?: Fence } = {}): Promise<NotifierService> {
  const { config } = runtime;
  const n = config.notifications;
  const log = runtime.log.child({ service: 'notifier' });
  const vapid = await loadVapidKeys(runtime.db, config);
  const projection = await openNotifierProjection(runtime);
  const runner = new ProjectionRunner({ ...runtime, log }, projection, {
    maxDeliveries: config.projector.maxDeliveries,
    retryDelayMs: config.projector.retryDelayMs,
    minFlushIntervalMs: FLUSH_INTERVAL_MS,
    ...(options.fence ? { fence: options.fence } : {}),
  });
  const outcomes = runtime.metrics.counter(
    'parley_notification_deliveries_total',
    'Notification delivery attempts by channel kind and outcome (sent, retry, failed, gone, rate_limited).',
    ['kind', 'outcome'],
  );
  // Webhook and push requests time out after NOTIFY_TIMEOUT_MS: buckets up to 30 s cover any setting in use.
  const attemptSeconds = runtime.metrics.histogram(
    'parley_notification_attempt_seconds',
    'Duration of one notification delivery attempt (webhook or Web Push request), by channel kind and outcome.',
    ['kind', 'outcome', 'role'],
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  );
  const loop = new DeliveryLoop(
    new DeliveryStore(runtime.db),
    { ...n, vapid, vapidSubject: n.vapidSubject, resolve: options.resolve },
    log.child({ component: 'delivery' }),
    outcomes,
    attemptSeconds,
  );
  await runner.start();
  loop.start();
  log.info('notifier started', { consumers: runner.shards.map((s) => s.consumerName), coalesceMs: n.coalesceMs });
  if (n.allowPrivateTargets)
    log.warn('NOTIFY_ALLOW_PRIVATE_TARGETS is on: webhooks and push endpoints may reach loopback, private and metadata addresses (development only)');
  return {
    runner,
    async stop() {
      await runner.stop();
      await loop.stop();
    },
  };
}
