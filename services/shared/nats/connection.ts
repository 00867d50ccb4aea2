import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from '../logger.js';

export interface NatsHandles {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

/**
 * Connects with unlimited reconnects: a gateway outlives a nats-server
 * restart. Status changes are logged so an operator can see flapping.
 */
export async function connectNats(url: string, name: string, log: Logger): Promise<NatsHandles> {
  const nc = await connect({
    servers: url.split(','),
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
