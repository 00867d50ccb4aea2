import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { Config } from '../runtime/config.js';
import type { Logger } from '../observability/logger.js';
import { embeddedNatsAuth, natsConnectionOptions, type NatsClientAuth } from './credentials.js';

export interface NatsHandles {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

/**
 * The credentials a process of this config presents: the configured ones for
 * an external NATS (NATS_URL set), else the embedded server's password from
 * the data dir (so the CLI on the same machine needs no flags).
 */
export function natsClientAuth(config: Config): NatsClientAuth {
  return config.nats.url ? config.nats.client : embeddedNatsAuth(config.dataDir);
}

/**
 * Connects with unlimited reconnects: a gateway outlives a nats-server
 * restart. Status changes are logged so an operator can see flapping.
 * Credentials come from `auth` or from `user:pass@` in `url`; the URL is
 * never logged here (redactNatsUrl where one must be).
 */
export async function connectNats(url: string, name: string, log: Logger, auth: NatsClientAuth = {}): Promise<NatsHandles> {
  const nc = await connect({
    ...natsConnectionOptions(url, auth),
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    pingInterval: 10_000,
    // Every request (each JetStream append) would otherwise build two Error objects with stack
    // traces up front, in case it fails: a tenth of a gateway's CPU per message, measured.
    noAsyncTraces: true,
  });
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect' || s.type === 'error') log.warn('nats status', { type: s.type });
    }
  })().catch(() => undefined);
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  return { nc, js, jsm };
}
