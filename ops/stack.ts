import path from 'node:path';
import type { Config } from '../services/runtime/config.js';
import type { Logger } from '../services/observability/logger.js';
import { EMBEDDED_NATS_USER, ensureEmbeddedNatsPassword } from '../services/event-log/credentials.js';
import { maxEventBytes } from '../services/runtime/runtime.js';
import { ensureNatsServer } from './embedded/nats-binary.js';
import { startNatsServer, type NatsServerHandle } from './embedded/nats-server.js';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from './embedded/postgres.js';

export interface Stack {
  natsUrl: string;
  databaseUrl: string;
  /** The servers this stack started itself (absent when an external URL was configured). */
  embedded: { nats?: NatsServerHandle; postgres?: EmbeddedPostgresHandle };
  /** Stops whatever this stack started (external servers are left alone). */
  stop(): Promise<void>;
}

/**
 * The dependencies the platform needs: each is the external server named in
 * the config, or an embedded one with its data under the data dir.
 * (ClickHouse needs no process: embedded chDB runs inside the platform.)
 */
export async function startStack(config: Config, log: Logger, projectDir: string, options: { ownsSignals?: boolean } = {}): Promise<Stack> {
  const stops: (() => Promise<void>)[] = [];
  const embedded: Stack['embedded'] = {};
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch((err) => log.error('stopping a dependency failed', { err }));
  };
  try {
    const natsUrl = await (async () => {
      if (config.nats.url) return config.nats.url;
      const nlog = log.child({ dependency: 'nats-server' });
      const binary = await ensureNatsServer({ projectDir, log: nlog, ...(config.nats.serverBinary ? { explicitPath: config.nats.serverBinary } : {}) });
      nlog.info('using nats-server', { path: binary.path, version: binary.version });
      const server = await startNatsServer({
        binary: binary.path,
        dataDir: path.join(config.dataDir, 'nats'),
        port: config.nats.embeddedPort,
        syncInterval: config.nats.syncInterval,
        maxPayload: Math.max(1 << 20, maxEventBytes(config)),
        ...(config.nats.maxFileStoreBytes ? { maxFileStore: config.nats.maxFileStoreBytes } : {}),
        // Its clients (this platform, `parley` commands) read the same password from the data dir (natsClientAuth).
        auth: { user: EMBEDDED_NATS_USER, password: ensureEmbeddedNatsPassword(config.dataDir) },
        log: nlog,
        detached: options.ownsSignals ?? false,
      });
      stops.push(() => server.stop());
      embedded.nats = server;
      return server.url;
    })();
    const databaseUrl = await (async () => {
      if (config.postgres.url) return config.postgres.url;
      const pg = await startEmbeddedPostgres({
        dataDir: path.join(config.dataDir, 'postgres'),
        port: config.postgres.embeddedPort,
        log: log.child({ dependency: 'postgres' }),
        detached: options.ownsSignals ?? false,
      });
      stops.push(() => pg.stop());
      embedded.postgres = pg;
      return pg.ensureDatabase('parley');
    })();
    return { natsUrl, databaseUrl, embedded, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
