import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { AppError } from '../runtime/errors.js';
import type { Logger } from '../observability/logger.js';
import { NatsSetupRefused } from '../event-log/refusal.js';
import { decodeLeaseEntry, isWrongLastSequence } from './kv-lease-entries.js';
import { reconcileStream } from '../event-log/replicas.js';

/**
 * The node id a process embeds in the ids it mints (services/ids/snowflake.ts),
 * leased in a NATS KV bucket so no two running processes hold the same one.
 *
 * - Acquire: `create` on the key (fails when the key exists): an explicit
 *   NODE_ID is leased exactly or the start is refused; without one the first
 *   free id of 0..1023 is taken.
 * - Keep: the bucket's max age is the lease's TTL; the holder re-puts its
 *   entry every TTL/3 with the revision it last wrote (`update`), so a
 *   holder that stops refreshing (killed, frozen, cut off) loses the key TTL
 *   after its last refresh and the id becomes free.
 * - Mint only while held: `assertHeld()` passes while the last refresh is
 *   younger than the TTL (less a margin), measured on this process's
 *   monotonic clock from before the refresh was sent: the key cannot have
 *   expired on the server before then, so nobody else can hold it yet.
 * - A refresh that cannot reach NATS changes nothing until that validity
 *   runs out; then minting pauses (`unavailable`) until a refresh succeeds
 *   again, or, if the key lapsed meanwhile and is still free, is re-created.
 * - Lost: when the key was taken by another process (its revision moved
 *   and the entry is not ours), the lease is lost for good: minting is
 *   refused and `onLost` listeners run (the platform stops its services and
 *   `npm start` exits 1, for a supervisor to restart it with a new id).
 * - Release on a clean stop: delete with the revision we wrote, so a key
 *   someone else holds by then is never deleted.
 */
export const NODE_ID_MIN = 0;
export const NODE_ID_MAX = 1023;
export const NODE_ID_LEASE_TTL_MS = 30_000;
const RELEASE_TIMEOUT_MS = 2_000;

export function nodeIdBucket(namespace: string): string {
  return `${namespace}_node_ids`;
}

export interface NodeIdLeaseOptions {
  namespace: string;
  /** An explicit NODE_ID: leased exactly, or the start is refused. Undefined: the first free id. */
  requested: number | undefined;
  replicas: number;
  log: Logger;
  /** The bucket's max age and so the lease's lifetime without refresh (30 s; tests shorten it). */
  ttlMs?: number;
  /** Refresh period (TTL/3 by default). */
  refreshMs?: number;
}

interface LeaseValue {
  /** This lease instance: tells our own entry from another process's with the same holder text. */
  token: string;
  holder: string;
  since: string;
}

type State = 'held' | 'stale' | 'lost' | 'released';

const decode = (entry: KvEntry | null) => decodeLeaseEntry<LeaseValue>(entry);

function describeHolder(entry: KvEntry | null): string {
  const v = decode(entry);
  return v ? `${v.holder} (since ${v.since})` : 'another process';
}

export class NodeIdLease {
  private state: State = 'held';
  private timer: NodeJS.Timeout | null = null;
  private refreshing: Promise<void> | null = null;
  private readonly lostListeners: ((reason: string) => void)[] = [];

  private constructor(
    readonly nodeId: number,
    private readonly kv: KV,
    private readonly value: LeaseValue,
    private revision: number,
    private validUntil: number,
    private readonly ttlMs: number,
    private readonly log: Logger,
  ) {}

  static async acquire(js: JetStreamClient, jsm: JetStreamManager, options: NodeIdLeaseOptions): Promise<NodeIdLease> {
    const ttlMs = options.ttlMs ?? NODE_ID_LEASE_TTL_MS;
    const bucket = nodeIdBucket(options.namespace);
    const kv = await new Kvm(js).create(bucket, {
      ttl: ttlMs,
      history: 1,
      replicas: options.replicas,
      description: 'Parley node ids leased by running processes',
    });
    // An existing bucket keeps its settings through Kvm.create: bring TTL and replicas to what this process expects.
    await reconcileStream(jsm, `KV_${bucket}`, { replicas: options.replicas, maxAgeNanos: ttlMs * 1_000_000 }, options.log);
    const value: LeaseValue = { token: randomUUID(), holder: `pid ${process.pid} on ${os.hostname()}`, since: new Date().toISOString() };
    const candidates = options.requested !== undefined ? [options.requested] : Array.from({ length: NODE_ID_MAX - NODE_ID_MIN + 1 }, (_, i) => NODE_ID_MIN + i);
    for (const id of candidates) {
      const sentAt = performance.now();
      try {
        const revision = await kv.create(String(id), JSON.stringify(value));
        const lease = new NodeIdLease(id, kv, value, revision, sentAt + validityMs(ttlMs), ttlMs, options.log);
        lease.timer = setInterval(() => void lease.refresh(), options.refreshMs ?? Math.floor(ttlMs / 3));
        lease.timer.unref();
        options.log.info('node id leased', { nodeId: id, bucket, ttlMs, explicit: options.requested !== undefined });
        return lease;
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
        if (options.requested !== undefined) {
          const holder = describeHolder(await kv.get(String(id)).catch(() => null));
          throw new NatsSetupRefused(
            `NODE_ID=${id} is in use by ${holder} (NATS KV bucket ${bucket}); give this process another NODE_ID (${NODE_ID_MIN}..${NODE_ID_MAX}), unset it to take a free one, or wait up to ${Math.ceil(ttlMs / 1000)} s if that process is gone`,
          );
        }
      }
    }
    throw new NatsSetupRefused(
      `every node id ${NODE_ID_MIN}..${NODE_ID_MAX} is leased (NATS KV bucket ${bucket}): more than ${NODE_ID_MAX + 1} processes share PARLEY_NAMESPACE=${options.namespace}`,
    );
  }

  /** Throws (`unavailable`) unless ids may be minted with this node id right now. */
  assertHeld(): void {
    if (this.state === 'held' && performance.now() < this.validUntil) return;
    const why = this.state === 'lost' ? 'was taken by another process' : this.state === 'released' ? 'was released' : 'could not be refreshed';
    throw new AppError('unavailable', `this server's node id lease ${why}; retry on another server`);
  }

  get status(): State {
    return this.state === 'held' && performance.now() >= this.validUntil ? 'stale' : this.state;
  }

  /** Called once, when another process has taken the id: the holder must stop minting for good. */
  onLost(listener: (reason: string) => void): void {
    this.lostListeners.push(listener);
  }

  /** One refresh now (the timer calls it every TTL/3); concurrent calls share one. */
  refresh(): Promise<void> {
    this.refreshing ??= this.doRefresh().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private async doRefresh(): Promise<void> {
    if (this.state === 'lost' || this.state === 'released') return;
    const key = String(this.nodeId);
    const sentAt = performance.now();
    try {
      this.revision = await this.kv.update(key, JSON.stringify(this.value), this.revision);
      this.renewed(sentAt);
      return;
    } catch (err) {
      if (!isWrongLastSequence(err)) return this.unreachable(err);
    }
    // The key moved since our last write: our own write whose ack was lost, a lapse, or another holder.
    let current: KvEntry | null;
    try {
      current = await this.kv.get(key);
    } catch (err) {
      return this.unreachable(err);
    }
    const value = decode(current);
    if (value?.token === this.value.token) {
      this.revision = current!.revision;
      this.renewed(sentAt);
      return;
    }
    if (!value) {
      // Lapsed (we could not refresh for a TTL) and nobody took it: whoever may have held it in
      // between minted while we were paused, so taking it again cannot overlap with them.
      try {
        this.revision = await this.kv.create(key, JSON.stringify(this.value));
        this.log.warn('node id lease lapsed and was taken again', { nodeId: this.nodeId });
        this.renewed(sentAt);
        return;
      } catch (err) {
        if (!isWrongLastSequence(err)) return this.unreachable(err);
        current = await this.kv.get(key).catch(() => null);
      }
    }
    this.lose(`node id ${this.nodeId} is now held by ${describeHolder(current)}`);
  }

  private renewed(sentAt: number): void {
    if (this.state !== 'held' && this.state !== 'stale') return; // released or lost meanwhile
    if (this.status === 'stale') this.log.warn('node id lease refreshed again; minting resumes', { nodeId: this.nodeId });
    this.state = 'held';
    this.validUntil = sentAt + validityMs(this.ttlMs);
  }

  private unreachable(err: unknown): void {
    if (performance.now() >= this.validUntil && this.state === 'held') {
      this.state = 'stale';
      this.log.error('node id lease could not be refreshed for its whole TTL; minting paused until it is', { nodeId: this.nodeId, err });
    } else {
      this.log.warn('node id lease refresh failed; retrying', { nodeId: this.nodeId, err: String(err) });
    }
  }

  private lose(reason: string): void {
    if (this.state === 'lost' || this.state === 'released') return;
    this.state = 'lost';
    if (this.timer) clearInterval(this.timer);
    this.log.error('node id lease lost; this process stops minting ids', { nodeId: this.nodeId, reason });
    for (const l of this.lostListeners) {
      try {
        l(reason);
      } catch (err) {
        this.log.error('a node id lease listener failed', { err });
      }
    }
  }

  /** Stops refreshing and frees the id (unless someone else holds it by now). Never throws. */
  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    const wasHolding = this.state === 'held' || this.state === 'stale';
    this.state = 'released';
    await this.refreshing?.catch(() => undefined);
    if (!wasHolding) return;
    const deleted = this.kv.delete(String(this.nodeId), { previousSeq: this.revision });
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), RELEASE_TIMEOUT_MS).unref());
    const outcome = await Promise.race([deleted.then(() => 'ok' as const), timeout]).catch((err: unknown) => err);
    if (outcome === 'ok') this.log.info('node id released', { nodeId: this.nodeId });
    // Not deleted: it lapses by itself within the TTL.
    else this.log.warn('node id not released; it frees itself within the lease TTL', { nodeId: this.nodeId, ttlMs: this.ttlMs, err: String(outcome) });
  }
}

/** Held on our clock for the TTL less a tenth: room for the two clocks' rates and timer lateness. */
function validityMs(ttlMs: number): number {
  return ttlMs - Math.ceil(ttlMs / 10);
}
