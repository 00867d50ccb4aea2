import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import type { Logger } from '../observability/logger.js';
import { reconcileStream, replicasRefusal } from './replicas.js';

/**
 * The KV buckets and object store the services use besides the event log,
 * provisioned with STREAM_REPLICAS when a runtime opens, before any service
 * opens them. The services then find them existing (Kvm/Objm `create` binds
 * to an existing bucket without changing it), so the replica count is set
 * in one place; the node-id bucket provisions itself (nats/node-id-lease.ts).
 *
 * The settings must match what the services would create themselves:
 * presence (services/gateway/infra/presence.ts, and the notifier's reader),
 * last seen, attachments (services/gateway/infra/attachment-store.ts).
 */
export interface BucketSettings {
  namespace: string;
  replicas: number;
  presenceTtlSeconds: number;
}

export function platformBuckets(s: BucketSettings) {
  return {
    kv: [
      { name: `${s.namespace}_presence`, options: { ttl: s.presenceTtlSeconds * 1000, history: 1 } },
      { name: `${s.namespace}_last_seen`, options: { history: 1 } },
    ],
    objectStores: [{ name: `${s.namespace}_attachments`, options: { description: 'Parley message attachments, by SHA-256' } }],
  };
}

/** Creates each bucket with the replica count, or scales an existing one to it; returns the stream names. */
export async function ensurePlatformBuckets(js: JetStreamClient, jsm: JetStreamManager, s: BucketSettings, log: Logger): Promise<string[]> {
  const buckets = platformBuckets(s);
  const streams: string[] = [];
  for (const b of buckets.kv) {
    const stream = `KV_${b.name}`;
    await refuseReadably(stream, s.replicas, () => new Kvm(js).create(b.name, { ...b.options, replicas: s.replicas }));
    await reconcileStream(jsm, stream, { replicas: s.replicas }, log);
    streams.push(stream);
  }
  for (const o of buckets.objectStores) {
    const stream = `OBJ_${o.name}`;
    await refuseReadably(stream, s.replicas, () => new Objm(js).create(o.name, { ...o.options, replicas: s.replicas }));
    await reconcileStream(jsm, stream, { replicas: s.replicas }, log);
    streams.push(stream);
  }
  return streams;
}

async function refuseReadably(stream: string, replicas: number, create: () => Promise<unknown>): Promise<void> {
  try {
    await create();
  } catch (err) {
    throw replicasRefusal(err, stream, replicas) ?? err;
  }
}
