import type { NatsConnection } from '@nats-io/transport-node';
import { freeDiskBytes } from './health.js';
import type { MetricsRegistry } from './metrics.js';
import { storageAlarms, type StoreName } from './storage-full.js';

const STORES: readonly StoreName[] = ['nats', 'postgres', 'clickhouse'];

/**
 * Gauges every process exposes whatever its roles, for the alert rules in
 * ops/prometheus/alerts.yml: whether the NATS connection is up, and whether
 * a store refused a write for lack of space (the same alarm /healthz reads,
 * services/observability/storage-full.ts), and the free space left on the disk
 * of each embedded store, so an alert can fire before the first refused write
 * (an external store's disk is its own host's to watch, e.g. node_exporter).
 */
export function registerPlatformGauges(metrics: MetricsRegistry, nc: NatsConnection, embeddedDirs: Partial<Record<StoreName, string>> = {}): void {
  const connected = metrics.gauge('parley_nats_connected', 'Whether this process is connected to NATS (1) or disconnected and reconnecting (0).').labels();
  connected.set(nc.isClosed() ? 0 : 1);
  // Status events, not a poll: a scrape during an outage must read 0 even though the connection object is not closed.
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') connected.set(0);
      else if (s.type === 'reconnect') connected.set(1);
    }
    connected.set(0);
  })().catch(() => connected.set(0));
  const full = metrics.gauge(
    'parley_storage_full',
    'Whether a store refused a write for lack of space within the last 30 s (1) or not (0), by store; /healthz reports the same.',
    ['store'],
  );
  metrics.onCollect(() => {
    for (const store of STORES) full.set({ store }, storageAlarms.active(store) ? 1 : 0);
    if (nc.isClosed()) connected.set(0);
  });
  const dirs = Object.entries(embeddedDirs) as [StoreName, string][];
  if (dirs.length === 0) return;
  const free = metrics.gauge('parley_storage_free_bytes', 'Bytes still usable on the disk of each embedded store (nats, postgres, clickhouse).', ['store']);
  metrics.onCollect(async () => {
    await Promise.all(dirs.map(async ([store, dir]) => free.set({ store }, await freeDiskBytes(dir))));
  });
}
