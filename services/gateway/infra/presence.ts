import { Kvm, type KV } from '@nats-io/kv';
import type { JetStreamClient } from '@nats-io/jetstream';
import { Empty, headers, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../../observability/logger.js';
import { guarded } from '../guard.js';

export interface PresenceView {
  userId: string;
  status: 'online' | 'offline';
  /** Last time the user was seen connected (ms), when known. */
  lastSeenAt: number | null;
}

/** The heartbeat rewrites a slice of its keys this often (at most), rather than all of them at once. */
const HEARTBEAT_SLICE_MS = 1000;

/**
 * Presence off the durable log: a KV bucket whose entries expire after the
 * TTL. A gateway writes one key per locally connected user when the user
 * comes online and rewrites each of them every TTL/3 (the heartbeat), in
 * slices spread over that period: all at once, 1,000 users were 1,000
 * JetStream writes in one burst, and the appends of messages queued behind
 * them (latency spikes). A user whose gateway dies simply expires. Last-seen
 * times go to a second bucket without TTL when the user's last local
 * connection closes.
 *
 * Writes are plain publishes on the buckets' subjects (which is what a KV put
 * is), without waiting for JetStream's acknowledgement: presence is advisory
 * and self-healing (the heartbeat rewrites it), and a request per connect and
 * disconnect was a tenth of a gateway's CPU in a reconnect storm.
 */
export class PresenceService {
  private readonly local = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  /** Where the heartbeat's pass over `local` stands (a live Map iterator: it sees users added meanwhile). */
  private cursor: Iterator<string> | null = null;
  /** Keys the heartbeat may still rewrite now (grows by a slice per tick). */
  private budget = 0;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly online: KV,
    private readonly lastSeen: KV,
    private readonly buckets: { online: string; lastSeen: string },
    private readonly log: Logger,
  ) {}

  static async open(nc: NatsConnection, js: JetStreamClient, namespace: string, ttlSeconds: number, log: Logger): Promise<PresenceService> {
    const kvm = new Kvm(js);
    const buckets = { online: `${namespace}_presence`, lastSeen: `${namespace}_last_seen` };
    const online = await kvm.create(buckets.online, { ttl: ttlSeconds * 1000, history: 1 });
    const lastSeen = await kvm.create(buckets.lastSeen, { history: 1 });
    const service = new PresenceService(nc, online, lastSeen, buckets, log);
    const period = (ttlSeconds * 1000) / 3;
    const slice = Math.min(HEARTBEAT_SLICE_MS, period / 4);
    const slicesPerPeriod = Math.floor(period / slice);
    service.timer = setInterval(
      guarded(log, 'presence heartbeat', () => service.heartbeat(slicesPerPeriod)),
      slice,
    );
    service.timer.unref();
    return service;
  }

  connected(userId: string): void {
    const n = (this.local.get(userId) ?? 0) + 1;
    this.local.set(userId, n);
    if (n === 1) this.put(this.buckets.online, userId, String(Date.now()));
  }

  disconnected(userId: string): void {
    const n = (this.local.get(userId) ?? 1) - 1;
    if (n > 0) {
      this.local.set(userId, n);
      return;
    }
    this.local.delete(userId);
    // Another gateway holding a connection of this user re-asserts it on its next heartbeat.
    this.delete(this.buckets.online, userId);
    this.put(this.buckets.lastSeen, userId, String(Date.now()));
  }

  async lookup(userIds: string[]): Promise<PresenceView[]> {
    return Promise.all(
      userIds.map(async (userId) => {
        const [on, seen] = await Promise.all([this.online.get(userId), this.lastSeen.get(userId)]);
        const isOnline = on !== null && on.operation === 'PUT';
        const last = isOnline ? Date.now() : seen && seen.operation === 'PUT' ? Number(seen.string()) : null;
        return { userId, status: isOnline ? 'online' : 'offline', lastSeenAt: last } as PresenceView;
      }),
    );
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /**
   * Rewrites the next slice of the local users' keys: 1/`slicesPerPeriod` of
   * them per tick (fractions carried over), so a pass over all of them takes
   * one period however many there are.
   */
  private heartbeat(slicesPerPeriod: number): void {
    const now = String(Date.now());
    this.budget = Math.min(this.budget + this.local.size / slicesPerPeriod, this.local.size);
    while (this.budget >= 1) {
      this.cursor ??= this.local.keys();
      const next = this.cursor.next();
      if (next.done) {
        // A pass is complete: the next one starts here.
        this.cursor = null;
        if (this.local.size === 0) this.budget = 0;
        continue;
      }
      this.budget--;
      this.put(this.buckets.online, next.value, now);
    }
  }

  /** A KV put: a publish on the key's subject (user ids are subject-safe by contract). */
  private put(bucket: string, key: string, value: string): void {
    this.publish(`$KV.${bucket}.${key}`, value, undefined);
  }

  private delete(bucket: string, key: string): void {
    const h = headers();
    h.set('KV-Operation', 'DEL');
    this.publish(`$KV.${bucket}.${key}`, Empty, h);
  }

  private publish(subject: string, data: string | Uint8Array, h: ReturnType<typeof headers> | undefined): void {
    try {
      this.nc.publish(subject, data, h ? { headers: h } : undefined);
    } catch (err) {
      // Only a closed connection throws here; the next heartbeat after reconnecting restores presence.
      this.log.warn('presence update failed', { subject, err });
    }
  }
}
