import fs from 'node:fs/promises';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { subjectsFor, type Subjects } from '../../contracts/index.js';
import type { ProjectorDeps } from '../../services/projection/projection.js';
import { loadConfig, type Config } from '../../services/runtime/config.js';
import { createDb } from '../../services/read-store/connect.js';
import type { Database } from '../../services/read-store/schema.js';
import { createLogger } from '../../services/observability/logger.js';
import { connectNats, natsClientAuth, type NatsHandles } from '../../services/event-log/connection.js';
import { redactNatsUrl } from '../../services/event-log/credentials.js';
import type { ShardInfo } from '../../services/event-log/streams.js';
import { assertShardCount } from '../../services/event-log/shard-layout.js';
import { projectDirOf } from '../project-dir.js';
import type { CliIO } from './command.js';

const projectDir = projectDirOf(import.meta.url);

/** What operator commands work with: the log and the read models, no ClickHouse (embedded chDB belongs to the running platform). */
export interface OpsContext extends ProjectorDeps {
  config: Config;
  subjects: Subjects;
  nats: NatsHandles;
  db: Kysely<Database>;
  shards: ShardInfo[];
}

/**
 * The same configuration as the platform. Without NATS_URL / DATABASE_URL
 * the embedded servers are assumed up at their configured ports (4222 and
 * 5432 by default) with the Postgres password the embedded cluster keeps in
 * `<PARLEY_DATA_DIR>/postgres.password`.
 */
export async function resolveUrls(config: Config): Promise<{ natsUrl: string; databaseUrl: string }> {
  const natsUrl = config.nats.url ?? `nats://127.0.0.1:${config.nats.embeddedPort}`;
  if (config.postgres.url) return { natsUrl, databaseUrl: config.postgres.url };
  const passwordFile = path.join(config.dataDir, 'postgres.password');
  const password = (
    await fs.readFile(passwordFile, 'utf8').catch(() => {
      throw new Error(`DATABASE_URL is not set and there is no embedded Postgres password at ${passwordFile}: set DATABASE_URL or PARLEY_DATA_DIR`);
    })
  ).trim();
  return { natsUrl, databaseUrl: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${config.postgres.embeddedPort}/parley` };
}

/** Opens only the database, for commands that read nothing from NATS (no connection, no stream lookup). */
export async function withDatabase<T>(io: CliIO, fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  const config = loadConfig(io.env, projectDir);
  const log = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, base: { service: 'parley-cli' }, write: (l) => io.err(l) });
  const { databaseUrl } = await resolveUrls(config);
  const db = createDb(databaseUrl, log, { max: 1 });
  try {
    return await fn(db);
  } finally {
    await db.destroy();
  }
}

/** Opens the log and the database for one command and closes them afterwards. */
export async function withOps<T>(io: CliIO, fn: (ctx: OpsContext) => Promise<T>): Promise<T> {
  const config = loadConfig(io.env, projectDir);
  const log = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, base: { service: 'parley-cli' }, write: (l) => io.err(l) });
  const { natsUrl, databaseUrl } = await resolveUrls(config);
  const subjects = subjectsFor(config.namespace, config.nats.shards);
  const nats = await connectNats(natsUrl, 'parley-cli', log, natsClientAuth(config)).catch((err) => {
    throw new Error(`cannot reach NATS at ${redactNatsUrl(natsUrl)} (is the platform running? set NATS_URL otherwise): ${(err as Error).message}`);
  });
  const db = createDb(databaseUrl, log, { max: 4 });
  try {
    // Every shard's stream (STREAM_SHARDS must be the deployment's, as for the services themselves: refused otherwise,
    // or a command would silently work on some shards only, e.g. a reset without --shard).
    await assertShardCount(nats.jsm, subjects, subjects.shards);
    const shards = [];
    for (let shard = 0; shard < subjects.shards; shard++) {
      const stream = subjects.stream(shard);
      const info = await nats.jsm.streams.info(stream).catch(() => {
        throw new Error(`no event stream ${stream} on ${redactNatsUrl(natsUrl)} (wrong PARLEY_NAMESPACE or STREAM_SHARDS, or the platform never started?)`);
      });
      shards.push({ shard, stream, epoch: String(Date.parse(info.created)) });
    }
    return await fn({ config, subjects, nats, db, shards, log });
  } finally {
    await nats.nc.drain().catch(() => nats.nc.close());
    await db.destroy();
  }
}
