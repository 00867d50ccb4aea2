import { Kvm, type KV } from '@nats-io/kv';
import type { JetStreamClient } from '@nats-io/jetstream';

/**
 * Reads the gateways' presence bucket (`<ns>_presence`: a key per user with
 * a live connection on some gateway, expiring after the presence TTL). The
 * notifier may start before any gateway has created the bucket, so it
 * creates it with the gateways' own settings (creating an identical bucket
 * is a no-op), and binds to it as it is if those settings differ.
 */
export class PresenceReader {
  private constructor(private readonly kv: KV) {}

  static async open(js: JetStreamClient, namespace: string, ttlSeconds: number): Promise<PresenceReader> {
    const kvm = new Kvm(js);
    const name = `${namespace}_presence`;
    try {
      return new PresenceReader(await kvm.create(name, { ttl: ttlSeconds * 1000, history: 1 }));
    } catch {
      return new PresenceReader(await kvm.open(name));
    }
  }

  /** The users among `userIds` with a device online now. One KV read per user, a bounded number at a time. */
  async onlineAmong(userIds: readonly string[], concurrency = 64): Promise<Set<string>> {
    const online = new Set<string>();
    const unique = [...new Set(userIds)];
    for (let i = 0; i < unique.length; i += concurrency) {
      const chunk = unique.slice(i, i + concurrency);
      const entries = await Promise.all(chunk.map((u) => this.kv.get(u)));
      entries.forEach((e, j) => {
        if (e && e.operation === 'PUT') online.add(chunk[j]!);
      });
    }
    return online;
  }
}
