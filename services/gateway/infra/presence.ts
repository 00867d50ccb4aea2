import { Kvm, type KV } from '@nats-io/kv';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { Logger } from '../../shared/logger.js';

export interface PresenceView {
  userId: string;
  status: 'online' | 'offline';
  /** Last time the user was seen connected (ms), when known. */
  lastSeenAt: number | null;
}

/**
 * Presence off the durable log: a KV bucket whose entries expire after the
 * TTL. A gateway writes one key per locally connected user when the user
 * comes online and rewrites all of them every TTL/3 (the heartbeat); a user
 * whose gateway dies simply expires. Last-seen times go to a second bucket
 * without TTL when the user's last local connection closes.
 */
export class PresenceService {
  private readonly local = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  private constructor(
    private readonly online: KV,
    private readonly lastSeen: KV,
    private readonly ttlSeconds: number,
    private readonly log: Logger,
  ) {}

  static async open(js: JetStreamClient, namespace: string, ttlSeconds: number, log: Logger): Promise<PresenceService> {
    const kvm = new Kvm(js);
    const online = await kvm.create(`${namespace}_presence`, { ttl: ttlSeconds * 1000, history: 1 });
    const lastSeen = await kvm.create(`${namespace}_last_seen`, { history: 1 });
    const service = new PresenceService(online, lastSeen, ttlSeconds, log);
    service.timer = setInterval(() => void service.heartbeat(), (ttlSeconds * 1000) / 3);
    service.timer.unref();
    return service;
  }

  connected(userId: string): void {
    const n = (this.local.get(userId) ?? 0) + 1;
    this.local.set(userId, n);
    if (n === 1) this.online.put(userId, String(Date.now())).catch((err) => this.log.warn('presence put failed', { userId, err }));
  }

  disconnected(userId: string): void {
    const n = (this.local.get(userId) ?? 1) - 1;
    if (n > 0) {
      this.local.set(userId, n);
      return;
    }
    this.local.delete(userId);
    const now = String(Date.now());
    // Another gateway holding a connection of this user re-asserts it on its next heartbeat.
    Promise.all([this.online.delete(userId), this.lastSeen.put(userId, now)]).catch((err) => this.log.warn('presence update failed', { userId, err }));
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

  private async heartbeat(): Promise<void> {
    const now = String(Date.now());
    await Promise.all([...this.local.keys()].map((u) => this.online.put(u, now))).catch((err) => this.log.warn('presence heartbeat failed', { err }));
  }
}
