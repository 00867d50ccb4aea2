import path from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kysely } from 'kysely';
import { subjectsFor, type Subjects } from '../../contracts/index.js';
import { createAnalyticsClient, createReadOnlyAnalyticsClient } from '../analytics-store/clickhouse.js';
import { migrateClickHouse } from '../analytics-store/clickhouse-migrate.js';
import type { Config } from './config.js';
import { createDb } from '../read-store/connect.js';
import { migratePostgres } from '../read-store/migrate.js';
import type { Database } from '../read-store/schema.js';
import type { Logger } from '../observability/logger.js';
import { MetricsRegistry } from '../observability/metrics.js';
import { registerPlatformGauges } from '../observability/platform-metrics.js';
import type { StoreName } from '../observability/storage-full.js';
import { connectNats, natsClientAuth, type NatsHandles } from '../event-log/connection.js';
import { EventStore } from '../event-log/event-store.js';
import { EventLog } from '../event-log/event-log.js';
import { unreadableEventsObserver } from '../event-log/unreadable.js';
import { ensureEventStreams, type ShardInfo } from '../event-log/streams.js';
import { NodeIdLease } from '../leases/node-id-lease.js';
import { ensurePlatformBuckets } from '../event-log/buckets.js';
import { SnowflakeGenerator } from '../ids/snowflake.js';

/**
 * Connections every service needs, opened once per process and handed to
 * the services running in it. In embedded mode all services share one
 * process (chDB allows one owner of its data directory per process).
 */
export interface Runtime {
  /** As given, with `nodeId` set to the leased one. */
  config: Config & { nodeId: number };
  /** This process's node id, leased in NATS KV for as long as the runtime is open (unique among running processes). */
  nodeId: number;
  nodeIdLease: NodeIdLease;
  /** Ids minted with the leased node id; refuses (`unavailable`) while the lease is not held. */
  ids: SnowflakeGenerator;
  log: Logger;
  subjects: Subjects;
  nats: NatsHandles;
  /** The log: one store per shard stream, routed by subject. */
  store: EventLog;
  shards: ShardInfo[];
  db: Kysely<Database>;
  clickhouse: ClickHouseClient;
  /** Read-only session for analysts' SQL and the standard reports (never used to write). */
  clickhouseReadOnly: ClickHouseClient;
  /** Every service in the process registers its metrics here; the gateway serves them on /metrics. */
  metrics: MetricsRegistry;
  close(): Promise<void>;
}

export interface OpenRuntimeOptions {
  /** Resolved URLs (the embedded stack supplies them when the config has none). */
  natsUrl: string;
  databaseUrl: string;
  /** Apply migrations and create streams (idempotent). */
  provision?: boolean;
  name: string;
}

/** Largest stored event: the frame limit plus room for the envelope. */
export function maxEventBytes(config: Config): number {
  return config.gateway.maxFrameBytes + 16 * 1024;
}

export async function openRuntime(config: Config, log: Logger, options: OpenRuntimeOptions): Promise<Runtime> {
  const subjects = subjectsFor(config.namespace, config.nats.shards);
  const nats = await connectNats(options.natsUrl, options.name, log, natsClientAuth(config));
  const db = createDb(options.databaseUrl, log);
  const clickhouse = createAnalyticsClient(config);
  let clickhouseReadOnly: ClickHouseClient | null = null;
  let lease: NodeIdLease | null = null;
  try {
    // First: a refused node id leaves nothing else provisioned or open.
    lease = await NodeIdLease.acquire(nats.js, nats.jsm, {
      namespace: config.namespace,
      requested: config.nodeId,
      replicas: config.nats.replicas,
      log: log.child({ component: 'node-id' }),
    });
    const nodeIdLease = lease;
    const settings = {
      maxAgeDays: config.nats.maxAgeDays,
      duplicateWindowSeconds: config.nats.duplicateWindowSeconds,
      maxMsgBytes: maxEventBytes(config),
      replicas: config.nats.replicas,
      shards: config.nats.shards,
    };
    const shards = await ensureEventStreams(nats.jsm, subjects, settings, log);
    await ensurePlatformBuckets(
      nats.js,
      nats.jsm,
      { namespace: config.namespace, replicas: config.nats.replicas, presenceTtlSeconds: config.presence.ttlSeconds },
      log,
    );
    if (options.provision !== false) {
      await migratePostgres(db, log);
      await migrateClickHouse(clickhouse, config.clickhouse.database, log);
    }
    const readOnly = await createReadOnlyAnalyticsClient(config);
    clickhouseReadOnly = readOnly;
    const metrics = new MetricsRegistry();
    // The disks of the embedded stores; a store given by URL is external, and its own host watches its disk.
    const embeddedDirs: Partial<Record<StoreName, string>> = {};
    if (!config.nats.url) embeddedDirs.nats = path.join(config.dataDir, 'nats');
    if (!config.postgres.url) embeddedDirs.postgres = path.join(config.dataDir, 'postgres');
    if (!config.clickhouse.url) embeddedDirs.clickhouse = path.join(config.dataDir, 'chdb');
    registerPlatformGauges(metrics, nats.nc, embeddedDirs);
    const appendSeconds = metrics.histogram(
      'parley_event_append_seconds',
      'Time to append one event to the log (JetStream publish until its ack), by outcome.',
      ['outcome'],
    );
    const store = new EventLog(
      subjects,
      shards,
      shards.map(
        (shard) =>
          new EventStore(
            nats.nc,
            nats.js,
            nats.jsm,
            shard.stream,
            (s, outcome) => appendSeconds.observe({ outcome }, s),
            unreadableEventsObserver(metrics, log),
          ),
      ),
    );
    return {
      config: { ...config, nodeId: nodeIdLease.nodeId },
      nodeId: nodeIdLease.nodeId,
      nodeIdLease,
      ids: new SnowflakeGenerator(nodeIdLease.nodeId, Date.now, () => nodeIdLease.assertHeld()),
      log,
      subjects,
      nats,
      store,
      shards,
      db,
      clickhouse,
      clickhouseReadOnly: readOnly,
      metrics,
      async close() {
        await nodeIdLease.release();
        await nats.nc.drain().catch(() => nats.nc.close());
        await db.destroy();
        await readOnly.close();
        await clickhouse.close();
      },
    };
  } catch (err) {
    await lease?.release();
    await nats.nc.close().catch(() => undefined);
    await db.destroy().catch(() => undefined);
    await clickhouseReadOnly?.close().catch(() => undefined);
    await clickhouse.close().catch(() => undefined);
    throw err;
  }
}
