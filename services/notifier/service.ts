import type { HealthCheck } from '../shared/health.js';
import { loadVapidKeys } from '../shared/notifications/vapid.js';
import type { Runtime } from '../shared/runtime.js';
import { ProjectionRunner } from '../projector/runner.js';
import { DeliveryLoop } from './delivery/loop.js';
import { DeliveryStore } from './infra/delivery-store.js';
import { PresenceReader } from './infra/presence-reader.js';
import { notifierProjection } from './projection.js';

export interface NotifierService {
  /** The log consumer creating notification rows (checkpoint `notifier`). */
  runner: ProjectionRunner;
  /** For /healthz: fails when the notifier lags more than `projector.maxHealthyLag` events. */
  healthCheck: HealthCheck;
  stop(): Promise<void>;
}

/**
 * Notifications for offline members (docs/notifications.md): a projection of
 * the log into notification rows (exactly once, in the checkpoint
 * transaction) and a delivery loop sending them over webhooks and Web Push.
 * One notifier per deployment is expected; a second one would be safe (rows
 * are claimed conditionally) but would split the per-device rate limits.
 */
export async function startNotifier(runtime: Runtime): Promise<NotifierService> {
  const { config } = runtime;
  const n = config.notifications;
  const log = runtime.log.child({ service: 'notifier' });
  const shard = runtime.shards[0]!;
  const presence = await PresenceReader.open(runtime.nats.js, runtime.subjects.namespace, config.presence.ttlSeconds);
  const vapid = await loadVapidKeys(runtime.db, config);
  const projection = notifierProjection({
    subjects: runtime.subjects,
    shard: shard.shard,
    presence,
    coalesceMs: n.coalesceMs,
    channelMessages: n.channelMessages,
    maxEventAgeMs: n.maxEventAgeMs,
  });
  const runner = new ProjectionRunner({ ...runtime, log }, projection, { maxDeliveries: config.projector.maxDeliveries, retryDelayMs: config.projector.retryDelayMs });
  const outcomes = runtime.metrics.counter('parley_notification_deliveries_total', 'Notification delivery attempts by channel kind and outcome (sent, retry, failed, gone, rate_limited).', ['kind', 'outcome']);
  const loop = new DeliveryLoop(new DeliveryStore(runtime.db), { ...n, vapid, vapidSubject: n.vapidSubject }, log.child({ component: 'delivery' }), outcomes);
  await runner.start();
  loop.start();
  log.info('notifier started', { consumer: runner.consumerName, coalesceMs: n.coalesceMs });
  return {
    runner,
    async healthCheck() {
      const lag = await runner.lag();
      if (lag > config.projector.maxHealthyLag) throw new Error(`notifier lag ${lag} (limit ${config.projector.maxHealthyLag})`);
      return `notifier lag ${lag}`;
    },
    async stop() {
      await runner.stop();
      await loop.stop();
    },
  };
}
