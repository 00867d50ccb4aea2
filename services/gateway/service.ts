import { AppError } from '../runtime/errors.js';
import type { Authenticator } from '../auth/auth.js';
import path from 'node:path';
import { DegradedError, requiredChecks, withStorageCheck, type HealthCheck } from '../observability/health.js';
import { loadVapidKeys } from '../outbound/vapid.js';
import type { Runtime } from '../runtime/runtime.js';
import { KeyedRateLimiter } from '../limits/rate-limit.js';
import { ConversationCommands } from '../commands/conversation-commands.js';
import { UserCommands } from '../commands/user-commands.js';
import { CommandDispatcher } from './command-dispatcher.js';
import { gatewayMetrics, PROMETHEUS_CONTENT_TYPE } from './gateway-metrics.js';
import { guardApp } from './guard.js';
import { registerAnalyticsRoutes } from './http/analytics-routes.js';
import { errorCounter, httpMetrics } from './http/http-metrics.js';
import { HttpRouter } from './http/router.js';
import { OriginPolicy } from './http/origin-policy.js';
import { registerWebRoutes } from './http/web-routes.js';
import { registerOpenApiRoute } from './http/openapi-route.js';
import { AttachmentStore } from './infra/attachment-store.js';
import { PresenceService } from './infra/presence.js';
import { ConversationQueries } from './queries/conversation-queries.js';
import { MessageQueries } from './queries/message-queries.js';
import { NotificationQueries } from './queries/notification-queries.js';
import { registerRoutes } from './http/routes.js';
import { ReadModel } from './read-model.js';
import { installProcessErrorHandlers } from './process-errors.js';
import { loadNativeUws, type us_listen_socket } from './uws.js';
import { deliveryTimingReporter } from './ws/delivery-timing.js';
import { LiveHub } from './ws/live-hub.js';
import { SocketServer } from './ws/socket-server.js';
import { CoalescedBounds } from './ws/coalesced-bounds.js';
import { ConcurrencyGate } from './ws/concurrency-gate.js';
import { RecentLog, type EventReader } from './ws/recent-log.js';
import { ShardReaders } from './ws/shard-readers.js';
import { SyncService } from './ws/sync-service.js';

export interface GatewayService {
  /** The port actually listened on (useful when configured as 0). */
  port: number;
  sockets: SocketServer;
  hub: LiveHub;
  /** The HTTP routes served, method and pattern. */
  routes: readonly { method: 'get' | 'post'; pattern: string }[];
  stop(): Promise<void>;
}

export interface GatewayDeps {
  auth: Authenticator;
  /** Extra dependency checks for /healthz besides NATS, Postgres and ClickHouse. */
  healthChecks?: Record<string, HealthCheck>;
  /** The checks /readyz depends on (health.ts requiredChecks); NATS and Postgres, a gateway's own needs, when omitted. */
  requiredChecks?: () => readonly string[];
}

export async function startGateway(runtime: Runtime, deps: GatewayDeps): Promise<GatewayService> {
  const uWS = loadNativeUws();
  const { config, log } = runtime;
  const errors = errorCounter(runtime.metrics);
  // Every handler registered on `app` fails its own request or connection, never the process (guard.ts).
  const app = guardApp(uWS.App(), log.child({ component: 'gateway' }), { onError: () => errors.inc({ code: 'internal', transport: 'handler' }) });
  const releaseProcessHandlers = installProcessErrorHandlers(log.child({ component: 'process' }), (kind) => errors.inc({ code: 'internal', transport: kind }));
  const readModel = new ReadModel(runtime.db, {
    count: runtime.subjects.shards,
    shardOf: (id) => runtime.subjects.shardOf(id),
    logEnd: async (k) => (await runtime.store.shard(k).bounds()).lastSeq,
  });
  const attachments = await AttachmentStore.open(runtime.nats.js, runtime.subjects.namespace);
  const presence = await PresenceService.open(
    runtime.nats.nc,
    runtime.nats.js,
    runtime.subjects.namespace,
    config.presence.ttlSeconds,
    log.child({ component: 'presence' }),
  );
  const commands = new ConversationCommands({
    store: runtime.store,
    subjects: runtime.subjects,
    // The leased node id's generator: it refuses to mint once the lease is not held (shared/nats/node-id-lease.ts).
    ids: runtime.ids,
    log: log.child({ component: 'commands' }),
    idempotency: readModel,
    attachments,
    rules: config.rules,
  });
  const dispatcher = new CommandDispatcher(commands, new UserCommands(runtime.store, runtime.subjects, commands), runtime.nats.nc, runtime.subjects);
  const metrics = gatewayMetrics(runtime.metrics);
  // Resumes and gap repairs read recent ranges; a storm of them is served from one shared window per shard.
  const resumeGate = new ConcurrencyGate(config.sync.maxConcurrentResumes);
  const { readers, recentLogs } = shardReaders(runtime, resumeGate);
  const hub = new LiveHub(
    runtime.nats.nc,
    runtime.subjects,
    runtime.shards,
    (topic, frame) => {
      metrics.fanout(app.numSubscribers(topic));
      app.publish(topic, frame, false);
      sockets.notePublished(topic);
    },
    // A gap is repaired from the log of the entity's shard (the subject's).
    async (subject, after, until) => {
      const read = await readers.ofSubject(subject).reader.readSubjects([subject], after, until, config.sync.maxReplay);
      // `until` is the previous event of a live one on this very subject: it exists. A read that stops short of it
      // was answered by a server whose copy is behind, and must not pass for a complete repair (the hub retries).
      if (!read.truncated && read.reached < until)
        throw new AppError('unavailable', `the event log answered the repair of ${subject} up to sequence ${read.reached}, not ${until}`);
      return read.events;
    },
    log.child({ component: 'hub' }),
  );
  const sync = new SyncService({
    hub,
    shards: readers,
    gate: resumeGate,
    readModel,
    subjects: runtime.subjects,
    log: log.child({ component: 'sync' }),
    maxReplay: config.sync.maxReplay,
    previousOnSubject: (subject, seq) => runtime.store.previousOnSubject(subject, seq),
  });
  const timing = deliveryTimingReporter(runtime.nats.nc, runtime.subjects, (topic) => app.numSubscribers(topic), metrics.delivered);
  hub.onDelivered = timing.observer;
  // One origin decision for CORS and for WebSocket upgrades (http/origin-policy.ts).
  const origins = new OriginPolicy({ allowedOrigins: config.gateway.allowedOrigins, devMode: config.auth.devTokens });
  const sockets = new SocketServer({ config, log, auth: deps.auth, commands: dispatcher, readModel, hub, presence, sync, metrics: metrics.sockets, origins });
  sockets.attach(app);
  hub.publishExcept = (topic, frame, userId) => sockets.publishExceptUser(topic, frame, userId);
  metrics.observe(
    () => sockets.connectionCount,
    () => hub.size,
  );

  // Each store's check also reports it degraded when full (a refused write, or its embedded disk; shared/health.ts).
  const embeddedDir = (external: string | undefined, dir: string) => (external ? undefined : path.join(config.dataDir, dir));
  const minFreeBytes = config.health.minFreeDiskBytes;
  const healthChecks: Record<string, HealthCheck> = {
    nats: withStorageCheck(
      async () => {
        if (runtime.nats.nc.isClosed()) throw new Error('connection closed');
        const [infos, account] = await Promise.all([
          Promise.all(runtime.shards.map((s) => runtime.nats.jsm.streams.info(s.stream))),
          runtime.nats.jsm.getAccountInfo(),
        ]);
        const limit = account.limits.max_storage;
        if (limit > 0 && account.storage >= limit) throw new DegradedError(`JetStream storage full: the account uses ${account.storage} of its ${limit} bytes`);
        // Every shard's stream must answer; the detail names each (one shard: as it always read).
        return infos.map((info, k) => `stream ${runtime.shards[k]!.stream} at seq ${info.state.last_seq}`).join(', ');
      },
      { store: 'nats', dataDir: embeddedDir(config.nats.url, 'nats'), minFreeBytes },
    ),
    postgres: withStorageCheck(
      async () => {
        await runtime.db.selectFrom('projector_checkpoints').select('seq').limit(1).execute();
      },
      { store: 'postgres', dataDir: embeddedDir(config.postgres.url, 'postgres'), minFreeBytes },
    ),
    clickhouse: withStorageCheck(
      async () => {
        const r = await runtime.clickhouse.ping();
        if (!r.success) throw r.error;
      },
      { store: 'clickhouse', dataDir: embeddedDir(config.clickhouse.url, 'chdb'), minFreeBytes },
    ),
    ...deps.healthChecks,
  };
  const router = new HttpRouter(app, log.child({ component: 'http' }), config.gateway.maxBodyBytes, httpMetrics(runtime.metrics), origins);
  registerRoutes(router, {
    auth: deps.auth,
    commands,
    dispatcher,
    readModel,
    conversations: new ConversationQueries(runtime.db),
    messages: new MessageQueries(runtime.db),
    attachments,
    presence,
    notifications: notificationQueries(runtime),
    limiter: new KeyedRateLimiter(config.limits.httpPerSecond, config.limits.httpPerSecond * 3),
    healthChecks,
    requiredChecks: deps.requiredChecks ?? (() => requiredChecks(['gateway'])),
    maxAttachmentBytes: config.attachments.maxBytes,
    allowedAttachmentTypes: config.attachments.allowedTypes,
  });
  registerAnalyticsRoutes(router, runtime);
  // Every service of this process registers in runtime.metrics, so in embedded mode this one endpoint shows them all.
  router.route('get', '/metrics', async () => ({
    status: 200,
    body: Buffer.from(await runtime.metrics.render()),
    headers: { 'content-type': PROMETHEUS_CONTENT_TYPE },
  }));
  registerOpenApiRoute(router);
  registerWebRoutes(router, log.child({ component: 'web' }));
  router.preflight();
  router.fallback();

  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
    app.listen(config.gateway.host, config.gateway.port, (s) =>
      s ? resolve(s) : reject(new Error(`cannot listen on ${config.gateway.host}:${config.gateway.port}`)),
    );
  });
  const port = uWS.us_socket_local_port(listenSocket);
  log.info('gateway listening', { host: config.gateway.host, port, ws: '/v1/ws' });

  return {
    port,
    sockets,
    hub,
    routes: router.routes,
    async stop() {
      uWS.us_listen_socket_close(listenSocket);
      sockets.closeAll();
      await sockets.drain();
      hub.close();
      timing.flush();
      for (const recent of recentLogs) recent.stop();
      presence.stop();
      // Let close frames flush before the process moves on.
      await new Promise((r) => setTimeout(r, 50));
      releaseProcessHandlers();
    },
  };
}

/**
 * One replay reader and one bounds per shard: each shard's sequences are its own, so each gets its own
 * recent-log window (when enabled) in front of its store. The configured capacity is shared out: each shard
 * takes about 1/N of the events, so 1/N of the window covers the same recent time, in the same memory.
 */
function shardReaders(runtime: Runtime, resumeGate: ConcurrencyGate): { readers: ShardReaders; recentLogs: RecentLog[] } {
  const { config, log } = runtime;
  const recentLogs: RecentLog[] = [];
  const all = runtime.shards.map((info) => {
    const store = runtime.store.shard(info.shard);
    let reader: EventReader = store;
    const capacity = Math.ceil(config.sync.recentLogEvents / runtime.shards.length);
    if (capacity > 0) {
      const recent = new RecentLog(
        store,
        {
          capacity,
          maxScan: Math.min(capacity / 2, 100_000),
          scanPerWaiter: 500,
          demand: () => resumeGate.demand,
          idleMs: 60_000,
        },
        log.child({ component: 'recent-log', ...(runtime.shards.length > 1 ? { shard: info.shard } : {}) }),
      );
      recentLogs.push(recent);
      reader = recent;
    }
    return { info, reader, bounds: new CoalescedBounds(() => store.bounds()) };
  });
  return { readers: new ShardReaders(runtime.subjects, all), recentLogs };
}

/** The VAPID public key is loaded (or generated) on first request: a gateway starts without waiting on it. */
function notificationQueries(runtime: Runtime): NotificationQueries {
  let key: Promise<string> | null = null;
  const vapidPublicKey = () => {
    key ??= loadVapidKeys(runtime.db, runtime.config).then((k) => k.publicKey);
    key.catch(() => (key = null));
    return key;
  };
  return new NotificationQueries(runtime.db, {
    allowHttp: runtime.config.notifications.allowHttp,
    allowPrivateTargets: runtime.config.notifications.allowPrivateTargets,
    vapidPublicKey,
  });
}
