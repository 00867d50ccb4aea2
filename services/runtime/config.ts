import path from 'node:path';
import { z } from 'zod';
import { parseRoles, type Role } from './roles.js';
import type { NatsClientAuth } from '../event-log/credentials.js';

/**
 * The only place that reads the environment. Everything else receives the
 * typed `Config`. Every variable, its default and its meaning is listed in
 * README.md ("Configuration").
 */
const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');
const port = z.coerce.number().int().min(0).max(65535);

const EnvSchema = z.object({
  PARLEY_DATA_DIR: z.string().optional(),
  PARLEY_NAMESPACE: z
    .string()
    .regex(/^[a-z][a-z0-9_-]{0,31}$/)
    .default('parley'),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  // Unset: lease the first free id (services/leases/node-id-lease.ts).
  NODE_ID: z.coerce.number().int().min(0).max(1023).optional(),
  // Which parts of the platform this process runs (services/runtime/roles.ts); `parley start --roles` overrides it.
  PARLEY_ROLES: z.string().default('all'),
  // Single-active roles' lease: a standby takes over at most this long (plus a third) after the active one stops refreshing.
  ROLE_LEASE_TTL_SECONDS: z.coerce.number().min(1).max(300).default(10),

  NATS_URL: z.string().optional(),
  // Credentials and TLS for an external NATS (services/event-log/credentials.ts); the embedded server's password is generated into the data dir.
  NATS_USER: z.string().min(1).optional(),
  NATS_PASSWORD: z.string().optional(),
  NATS_TOKEN: z.string().min(1).optional(),
  NATS_CREDS: z.string().min(1).optional(),
  NATS_TLS_CA: z.string().min(1).optional(),
  NATS_TLS_CERT: z.string().min(1).optional(),
  NATS_TLS_KEY: z.string().min(1).optional(),
  NATS_PORT: port.default(4222),
  NATS_SERVER_BIN: z.string().optional(),
  // 1s: measured as fast as 2m and five times faster than `always` (docs/operations.md).
  NATS_SYNC_INTERVAL: z
    .string()
    .regex(/^(always|[0-9]+(ms|s|m|h))$/)
    .default('1s'),
  STREAM_MAX_AGE_DAYS: z.coerce.number().min(0).default(365),
  STREAM_DUPLICATE_WINDOW_SECONDS: z.coerce.number().int().min(1).max(86400).default(120),
  // Unset: the size of the disk holding the store, so the disk, not a start-time estimate, is the limit (docs/operations.md, "Disk full").
  NATS_MAX_FILE_STORE_MB: z.coerce.number().int().min(1).optional(),
  // Odd, so a majority survives: 1 (one server), 3 or 5 (a cluster of at least that many).
  STREAM_REPLICAS: z.coerce
    .number()
    .int()
    .refine((n) => n === 1 || n === 3 || n === 5, 'must be 1, 3 or 5')
    .default(1),
  // Streams the log is spread over by a stable hash of the entity id (contracts/shards.ts). Fixed for the life of a
  // deployment (services/event-log/shard-layout.ts). Bounded: every shard costs each gateway and each worker a
  // consumer or subscription, and a resume reads every shard's bounds.
  STREAM_SHARDS: z.coerce.number().int().min(1).max(64).default(1),

  DATABASE_URL: z.string().optional(),
  POSTGRES_PORT: port.default(5432),

  PROJECTOR_MAX_DELIVERIES: z.coerce.number().int().min(1).max(100).default(5),
  PROJECTOR_RETRY_DELAY_MS: z.coerce.number().int().min(1).max(60_000).default(1000),
  HEALTH_MAX_PROJECTOR_LAG: z.coerce.number().int().min(0).default(10_000),
  HEALTH_MIN_FREE_DISK_MB: z.coerce.number().min(0).default(64),

  CLICKHOUSE_URL: z.string().optional(),
  CLICKHOUSE_DATABASE: z
    .string()
    .regex(/^[a-z_][a-z0-9_]*$/)
    .default('parley'),
  CLICKHOUSE_USER: z.string().optional(),
  CLICKHOUSE_PASSWORD: z.string().optional(),
  ANALYTICS_ADMIN_TOKEN: z.string().min(16).optional(),
  ANALYTICS_FLUSH_MS: z.coerce.number().int().min(1).max(60_000).default(1000),
  // The ClickHouse-compatible HTTP endpoint over embedded chDB (services/analytics/http/): a port, 0 (any free one) or `off`.
  ANALYTICS_HTTP_PORT: z.union([z.literal('off'), port]).optional(),
  ANALYTICS_HTTP_HOST: z.string().default('127.0.0.1'),
  ANALYTICS_HTTP_USER: z
    .string()
    .regex(/^[A-Za-z0-9_.@-]{1,64}$/)
    .default('analyst'),
  ANALYTICS_HTTP_PASSWORD: z.string().min(16).optional(),

  HOST: z.string().default('127.0.0.1'),
  PARLEY_ALLOW_INSECURE_BIND: bool.default(false),
  PORT: port.default(8080),
  MAX_FRAME_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(1 << 20)
    .default(64 * 1024),
  MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(64 << 20)
    .default(256 * 1024),
  MAX_BUFFERED_BYTES: z.coerce
    .number()
    .int()
    .min(64 * 1024)
    .default(1 << 20),
  HEARTBEAT_SECONDS: z.coerce.number().int().min(8).max(960).default(60),
  /** Comma-separated browser origins allowed cross-origin (CORS and WebSocket Origin); `*` for any. Unset: see Config.gateway.allowedOrigins. */
  CORS_ALLOWED_ORIGINS: z.string().optional(),

  RECALL_WINDOW_SECONDS: z.coerce.number().int().min(0).max(86400).default(120),
  MAX_REACTIONS_PER_MESSAGE: z.coerce.number().int().min(1).max(200).default(20),
  RATE_FRAMES_PER_SECOND: z.coerce.number().min(1).default(30),
  RATE_SENDS_PER_SECOND: z.coerce.number().min(0.1).default(10),
  RATE_HTTP_PER_SECOND: z.coerce.number().min(1).default(20),
  MAX_CONNECTIONS_PER_USER: z.coerce.number().int().min(1).max(100_000).default(20),
  MAX_ATTACHMENT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(256 << 20)
    .default(10 << 20),
  ATTACHMENT_TYPES: z.string().default('image/*,video/*,audio/*,text/plain,application/pdf,application/zip,application/octet-stream'),
  MAX_REPLAY_EVENTS: z.coerce.number().int().min(10).max(1_000_000).default(10_000),
  MAX_CONCURRENT_RESUMES: z.coerce.number().int().min(1).max(100_000).default(2000),
  RECENT_LOG_EVENTS: z.coerce.number().int().min(0).max(10_000_000).default(200_000),
  PRESENCE_TTL_SECONDS: z.coerce.number().int().min(5).max(3600).default(60),
  AUTH_JWT_SECRET: z.string().min(32).optional(),
  AUTH_JWT_PUBLIC_KEY: z.string().optional(),
  AUTH_JWT_ALGORITHM: z.enum(['RS256', 'ES256', 'EdDSA']).default('RS256'),
  AUTH_JWT_ISSUER: z.string().default('parley'),
  AUTH_JWT_AUDIENCE: z.string().optional(),
  AUTH_DEV_TOKENS: bool.optional(),

  NOTIFY_COALESCE_MS: z.coerce.number().int().min(0).max(3_600_000).default(10_000),
  NOTIFY_CHANNEL_MESSAGES: z.enum(['mentions', 'all']).default('mentions'),
  NOTIFY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(5),
  NOTIFY_RETRY_BASE_MS: z.coerce.number().int().min(10).max(3_600_000).default(1000),
  NOTIFY_RETRY_MAX_DELAY_MS: z.coerce.number().int().min(10).max(86_400_000).default(8000),
  NOTIFY_RATE_PER_MINUTE: z.coerce.number().min(0.1).default(20),
  NOTIFY_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  NOTIFY_MAX_EVENT_AGE_SECONDS: z.coerce.number().int().min(1).default(3600),
  NOTIFY_ALLOW_HTTP: bool.default(false),
  NOTIFY_ALLOW_PRIVATE_TARGETS: bool.default(false),
  NOTIFY_VAPID_PUBLIC_KEY: z
    .string()
    .regex(/^[A-Za-z0-9_-]{80,100}$/)
    .optional(),
  NOTIFY_VAPID_PRIVATE_KEY: z
    .string()
    .regex(/^[A-Za-z0-9_-]{40,50}$/)
    .optional(),
  NOTIFY_VAPID_SUBJECT: z
    .string()
    .regex(/^(mailto:|https:\/\/)\S+$/)
    .default('mailto:notifications@parley.invalid'),
});

/** Every variable the configuration reads: unknown names are otherwise ignored silently, so deployment files are checked against this (test/deploy-files.unit.test.ts). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(EnvSchema.shape);

export interface Config {
  dataDir: string;
  namespace: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** Asked-for node id (leased exactly, or the start is refused); undefined: lease the first free one. The leased id is `Runtime.nodeId`. */
  nodeId: number | undefined;
  /** The roles this process runs, in canonical order (PARLEY_ROLES; `all` by default). */
  roles: Role[];
  /** Lifetime of a single-active role's lease without refresh (services/leases/single-active.ts). */
  roleLeaseTtlMs: number;
  nats: {
    /** Undefined: start the embedded nats-server. */
    url: string | undefined;
    /** How to authenticate to an external NATS (NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_CREDS, NATS_TLS_*); the embedded one uses the data dir's password. */
    client: NatsClientAuth;
    embeddedPort: number;
    serverBinary: string | undefined;
    syncInterval: string;
    maxAgeDays: number;
    duplicateWindowSeconds: number;
    /** JetStream file storage limit of the embedded server; undefined: the size of the disk holding it. */
    maxFileStoreBytes: number | undefined;
    /** Replicas of every stream, KV bucket and object store the platform creates (a running stream is scaled to it). */
    replicas: 1 | 3 | 5;
    /** STREAM_SHARDS: streams the log is spread over (contracts/shards.ts), 1 to 64. */
    shards: number;
  };
  postgres: { url: string | undefined; embeddedPort: number };
  projector: {
    /** A failing event is parked (dead-lettered) on this delivery. */
    maxDeliveries: number;
    /** Nak delay after a failed delivery, doubling with each further one. */
    retryDelayMs: number;
    /** /healthz reports the projector down when more events than this wait to be projected. */
    maxHealthyLag: number;
  };
  /** /healthz reports an embedded store degraded (disk full) when its disk has less free space than this; 0: never. */
  health: { minFreeDiskBytes: number };
  clickhouse: { url: string | undefined; database: string; user: string | undefined; password: string | undefined };
  analytics: {
    /**
     * Bearer token for /v1/analytics/* (reports and read-only SQL). Unset:
     * those endpoints are open in development (dev tokens on) and refused otherwise.
     */
    adminToken: string | undefined;
    /**
     * Longest an event (or a delivery record) waits before its batch is inserted. Every INSERT costs ClickHouse
     * a new part per table and view and later merges (about 40 ms of CPU each in chDB, measured): this sets
     * how fresh analytics is against how much of the machine it takes.
     */
    flushMs: number;
    /** The ClickHouse-compatible HTTP endpoint for analysts' tools (services/analytics/http/plan.ts decides whether it runs). */
    http: {
      /** null: off (ANALYTICS_HTTP_PORT=off); 0: any free port. */
      port: number | null;
      /** ANALYTICS_HTTP_PORT was set (a problem then stops the start instead of leaving the endpoint off). */
      portExplicit: boolean;
      host: string;
      user: string;
      /** ANALYTICS_HTTP_PASSWORD, else ANALYTICS_ADMIN_TOKEN; undefined: none (the dev default on loopback only). */
      password: string | undefined;
    };
  };
  gateway: {
    host: string;
    /** Listen on a non-loopback HOST even with development defaults (services/runtime/exposure.ts). */
    allowInsecureBind: boolean;
    port: number;
    maxFrameBytes: number;
    maxBodyBytes: number;
    maxBufferedBytes: number;
    heartbeatSeconds: number;
    /**
     * Browser origins allowed besides the gateway's own (CORS, WebSocket Origin at the upgrade); `*` allows any.
     * null (CORS_ALLOWED_ORIGINS unset): any http://localhost / 127.0.0.1 / [::1] origin in development (dev tokens on), none in production.
     */
    allowedOrigins: string[] | null;
  };
  rules: {
    recallWindowMs: number;
    maxReactionsPerMessage: number;
  };
  limits: {
    /** Frames per connection per second (burst: twice that). */
    framesPerSecond: number;
    /** Messages per user per second on one gateway (burst: three times that). */
    sendsPerSecond: number;
    /** HTTP requests per user per second on one gateway (burst: three times that). */
    httpPerSecond: number;
    /** Open WebSocket connections per user on one gateway; more are refused at the upgrade (429). */
    connectionsPerUser: number;
  };
  attachments: { maxBytes: number; allowedTypes: string[] };
  presence: { ttlSeconds: number };
  sync: {
    /** Most events one resume replays before answering `too_far_behind`. */
    maxReplay: number;
    /** Resumes running at once per gateway; the rest queue (a reconnect storm clears instead of timing out). */
    maxConcurrentResumes: number;
    /** Events of the stream's tail a gateway keeps in memory for resumes (0: read every resume from JetStream). */
    recentLogEvents: number;
  };
  auth: {
    /** HS256 shared secret; when neither this nor a public key is set, a dev secret is generated under dataDir. */
    jwtSecret: string | undefined;
    jwtPublicKey: string | undefined;
    /** Algorithm of AUTH_JWT_PUBLIC_KEY. */
    jwtAlgorithm: 'RS256' | 'ES256' | 'EdDSA';
    issuer: string;
    audience: string | undefined;
    /** POST /v1/dev/token issues tokens for any user id. On by default only when no production key is configured. */
    devTokens: boolean;
  };
  notifications: {
    /** Messages of one conversation within this window (from the first) become one notification. */
    coalesceMs: number;
    /** In channels, notify on every message or (default) only when mentioned. */
    channelMessages: 'mentions' | 'all';
    /** Attempts per channel before a delivery fails. */
    maxAttempts: number;
    /** Delay before the first retry; doubles with each further one up to retryMaxDelayMs. */
    retryBaseMs: number;
    retryMaxDelayMs: number;
    /** Deliveries per channel (device) per minute; bursts of twice that. */
    ratePerMinute: number;
    timeoutMs: number;
    /** Messages older than this when the notifier gets to them are not notified (it was down or far behind). */
    maxEventAgeMs: number;
    /** Accept http:// webhook URLs and push endpoints (development and tests); https only otherwise. */
    allowHttp: boolean;
    /** Send to loopback, private, link-local and other internal addresses (development and tests); refused otherwise (docs/security.md). */
    allowPrivateTargets: boolean;
    /** Configured VAPID key pair; unset: generated once and kept in Postgres. */
    vapid: { publicKey: string; privateKey: string } | undefined;
    vapidSubject: string;
  };
}

export function loadConfig(env: Record<string, string | undefined> = process.env, cwd = process.cwd()): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  if (Boolean(e.NOTIFY_VAPID_PUBLIC_KEY) !== Boolean(e.NOTIFY_VAPID_PRIVATE_KEY)) {
    throw new Error('invalid configuration:\n  NOTIFY_VAPID_PRIVATE_KEY: set NOTIFY_VAPID_PUBLIC_KEY and NOTIFY_VAPID_PRIVATE_KEY together');
  }
  const hasProductionKey = Boolean(e.AUTH_JWT_SECRET || e.AUTH_JWT_PUBLIC_KEY);
  let roles: Role[];
  try {
    roles = parseRoles(e.PARLEY_ROLES);
  } catch (err) {
    throw new Error(`invalid configuration:\n  PARLEY_ROLES: ${(err as Error).message}`);
  }
  return {
    dataDir: path.resolve(cwd, e.PARLEY_DATA_DIR ?? '.parley'),
    namespace: e.PARLEY_NAMESPACE,
    logLevel: e.LOG_LEVEL,
    nodeId: e.NODE_ID,
    roles,
    roleLeaseTtlMs: Math.round(e.ROLE_LEASE_TTL_SECONDS * 1000),
    nats: {
      url: e.NATS_URL,
      client: {
        user: e.NATS_USER,
        password: e.NATS_PASSWORD,
        token: e.NATS_TOKEN,
        credsFile: resolveFile(cwd, e.NATS_CREDS),
        tls: { caFile: resolveFile(cwd, e.NATS_TLS_CA), certFile: resolveFile(cwd, e.NATS_TLS_CERT), keyFile: resolveFile(cwd, e.NATS_TLS_KEY) },
      },
      embeddedPort: e.NATS_PORT,
      serverBinary: e.NATS_SERVER_BIN,
      syncInterval: e.NATS_SYNC_INTERVAL,
      maxAgeDays: e.STREAM_MAX_AGE_DAYS,
      duplicateWindowSeconds: e.STREAM_DUPLICATE_WINDOW_SECONDS,
      maxFileStoreBytes: e.NATS_MAX_FILE_STORE_MB === undefined ? undefined : e.NATS_MAX_FILE_STORE_MB * 1024 * 1024,
      replicas: e.STREAM_REPLICAS as 1 | 3 | 5,
      shards: e.STREAM_SHARDS,
    },
    postgres: { url: e.DATABASE_URL, embeddedPort: e.POSTGRES_PORT },
    projector: { maxDeliveries: e.PROJECTOR_MAX_DELIVERIES, retryDelayMs: e.PROJECTOR_RETRY_DELAY_MS, maxHealthyLag: e.HEALTH_MAX_PROJECTOR_LAG },
    health: { minFreeDiskBytes: Math.round(e.HEALTH_MIN_FREE_DISK_MB * 1024 * 1024) },
    clickhouse: { url: e.CLICKHOUSE_URL, database: e.CLICKHOUSE_DATABASE, user: e.CLICKHOUSE_USER, password: e.CLICKHOUSE_PASSWORD },
    analytics: {
      adminToken: e.ANALYTICS_ADMIN_TOKEN,
      flushMs: e.ANALYTICS_FLUSH_MS,
      http: {
        port: e.ANALYTICS_HTTP_PORT === 'off' ? null : (e.ANALYTICS_HTTP_PORT ?? 8123),
        portExplicit: e.ANALYTICS_HTTP_PORT !== undefined,
        host: e.ANALYTICS_HTTP_HOST,
        user: e.ANALYTICS_HTTP_USER,
        password: e.ANALYTICS_HTTP_PASSWORD ?? e.ANALYTICS_ADMIN_TOKEN,
      },
    },
    gateway: {
      host: e.HOST,
      allowInsecureBind: e.PARLEY_ALLOW_INSECURE_BIND,
      port: e.PORT,
      maxFrameBytes: e.MAX_FRAME_BYTES,
      maxBodyBytes: e.MAX_BODY_BYTES,
      maxBufferedBytes: e.MAX_BUFFERED_BYTES,
      heartbeatSeconds: e.HEARTBEAT_SECONDS,
      allowedOrigins:
        e.CORS_ALLOWED_ORIGINS === undefined
          ? null
          : e.CORS_ALLOWED_ORIGINS.split(',')
              .map((o) => o.trim())
              .filter(Boolean),
    },
    rules: { recallWindowMs: e.RECALL_WINDOW_SECONDS * 1000, maxReactionsPerMessage: e.MAX_REACTIONS_PER_MESSAGE },
    limits: {
      framesPerSecond: e.RATE_FRAMES_PER_SECOND,
      sendsPerSecond: e.RATE_SENDS_PER_SECOND,
      httpPerSecond: e.RATE_HTTP_PER_SECOND,
      connectionsPerUser: e.MAX_CONNECTIONS_PER_USER,
    },
    attachments: {
      maxBytes: e.MAX_ATTACHMENT_BYTES,
      allowedTypes: e.ATTACHMENT_TYPES.split(',')
        .map((t) => t.trim())
        .filter(Boolean),
    },
    presence: { ttlSeconds: e.PRESENCE_TTL_SECONDS },
    sync: { maxReplay: e.MAX_REPLAY_EVENTS, maxConcurrentResumes: e.MAX_CONCURRENT_RESUMES, recentLogEvents: e.RECENT_LOG_EVENTS },
    auth: {
      jwtSecret: e.AUTH_JWT_SECRET,
      jwtPublicKey: e.AUTH_JWT_PUBLIC_KEY,
      jwtAlgorithm: e.AUTH_JWT_ALGORITHM,
      issuer: e.AUTH_JWT_ISSUER,
      audience: e.AUTH_JWT_AUDIENCE,
      devTokens: e.AUTH_DEV_TOKENS ?? !hasProductionKey,
    },
    notifications: {
      coalesceMs: e.NOTIFY_COALESCE_MS,
      channelMessages: e.NOTIFY_CHANNEL_MESSAGES,
      maxAttempts: e.NOTIFY_MAX_ATTEMPTS,
      retryBaseMs: e.NOTIFY_RETRY_BASE_MS,
      retryMaxDelayMs: e.NOTIFY_RETRY_MAX_DELAY_MS,
      ratePerMinute: e.NOTIFY_RATE_PER_MINUTE,
      timeoutMs: e.NOTIFY_TIMEOUT_MS,
      maxEventAgeMs: e.NOTIFY_MAX_EVENT_AGE_SECONDS * 1000,
      allowHttp: e.NOTIFY_ALLOW_HTTP,
      allowPrivateTargets: e.NOTIFY_ALLOW_PRIVATE_TARGETS,
      vapid:
        e.NOTIFY_VAPID_PUBLIC_KEY && e.NOTIFY_VAPID_PRIVATE_KEY ? { publicKey: e.NOTIFY_VAPID_PUBLIC_KEY, privateKey: e.NOTIFY_VAPID_PRIVATE_KEY } : undefined,
      vapidSubject: e.NOTIFY_VAPID_SUBJECT,
    },
  };
}

/** A configured file path, relative to the project directory like PARLEY_DATA_DIR. */
function resolveFile(cwd: string, file: string | undefined): string | undefined {
  return file === undefined ? undefined : path.resolve(cwd, file);
}
