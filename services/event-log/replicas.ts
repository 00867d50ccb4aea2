import type { JetStreamManager, StreamConfig, StreamInfo } from '@nats-io/jetstream';
import type { Logger } from '../observability/logger.js';
import { NatsSetupRefused } from './refusal.js';

/**
 * STREAM_REPLICAS for every stream, KV bucket and object store the platform
 * owns. A new one is created with it; one that exists with another count is
 * scaled by a stream update, which JetStream applies while the stream stays
 * online (up: new peers catch up from the leader; down: peers are dropped).
 * What JetStream refuses (more replicas than servers, replicas on a server
 * without clustering) stops the start with one line saying so.
 */
export interface StreamTargets {
  replicas?: number;
  /** Max age in nanoseconds (the TTL of a KV bucket). */
  maxAgeNanos?: number;
}

export async function reconcileStream(jsm: JetStreamManager, name: string, targets: StreamTargets, log: Logger): Promise<StreamInfo> {
  const info = await jsm.streams.info(name);
  const changes: Partial<StreamConfig> = {};
  if (targets.replicas !== undefined && info.config.num_replicas !== targets.replicas) changes.num_replicas = targets.replicas;
  if (targets.maxAgeNanos !== undefined && info.config.max_age !== targets.maxAgeNanos) changes.max_age = targets.maxAgeNanos;
  if (Object.keys(changes).length === 0) return info;
  const updated = await updateStream(jsm, info.config, changes);
  log.info('stream settings updated', {
    stream: name,
    ...(changes.num_replicas !== undefined ? { replicas: { from: info.config.num_replicas, to: changes.num_replicas } } : {}),
    ...(changes.max_age !== undefined ? { maxAge: changes.max_age } : {}),
  });
  return updated;
}

/** A stream update whose refusal about replicas reads as what to change. */
export async function updateStream(jsm: JetStreamManager, current: StreamConfig, changes: Partial<StreamConfig>): Promise<StreamInfo> {
  try {
    return await jsm.streams.update(current.name, { ...current, ...changes });
  } catch (err) {
    throw replicasRefusal(err, current.name, changes.num_replicas ?? current.num_replicas) ?? err;
  }
}

/** Creates a stream, with the same reading of a replicas refusal. */
export async function addStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<StreamInfo> {
  try {
    return await jsm.streams.add(config);
  } catch (err) {
    throw replicasRefusal(err, config.name, config.num_replicas ?? 1) ?? err;
  }
}

/** JetStream's answers when the servers cannot hold that many replicas (10074: not clustered; 10005: too few peers). */
export function replicasRefusal(err: unknown, stream: string, replicas: number): NatsSetupRefused | null {
  if (replicas <= 1) return null;
  const text = String((err as Error)?.message ?? err);
  if (!/replicas|insufficient resources|no suitable peers|clustered|peer/i.test(text)) return null;
  return new NatsSetupRefused(
    `STREAM_REPLICAS=${replicas} cannot be applied to ${stream}: ${text} (a single nats-server holds 1 replica; ${replicas} need a JetStream cluster of at least ${replicas} servers)`,
  );
}
