import type { Logger } from '../observability/logger.js';
import type { Runtime } from '../runtime/runtime.js';
import type { Fence } from '../leases/single-active.js';
import { consumerLag } from '../projection/consumer.js';
import { MembershipShardReactor } from './shard-reactor.js';
import { startAll } from '../concurrency/start-all.js';

/** The durable consumer name of shard `shard`: shard 0 keeps the one-shard name, so existing deployments resume where they were. */
export function membershipConsumerName(namespace: string, shard: number): string {
  return shard === 0 ? `${namespace}-membership` : `${namespace}-membership_s${shard}`;
}

/**
 * Turns membership changes recorded on a conversation's subject into events
 * on each affected user's subject, so every device of a user learns about
 * conversations it joined or left from its own subject. Each derived event
 * carries a Nats-Msg-Id made of the conversation event's position and the
 * user (reactions.ts), so a redelivery within the dedup window appends
 * nothing twice; the membership events are idempotent for their readers
 * beyond it.
 *
 * One durable consumer per shard stream (STREAM_SHARDS), each strictly in
 * order, all under the one `membership` lease (the same fence). A
 * conversation and its members may be on different shards: the derived
 * events are appended on each user's subject, wherever it lives.
 */
export class MembershipReactor {
  private readonly log: Logger;
  private readonly reactors: MembershipShardReactor[];

  constructor(
    private readonly runtime: Runtime,
    /** Checked before each event is reacted to: throws once this process no longer holds the `membership` lease. */
    fence: Fence = () => undefined,
  ) {
    this.log = runtime.log.child({ service: 'membership' });
    this.reactors = runtime.shards.map(
      (shard) => new MembershipShardReactor(runtime, shard, membershipConsumerName(runtime.subjects.namespace, shard.shard), fence, this.log),
    );
  }

  /** Shard 0's consumer (the only one with one shard). */
  get consumerName(): string {
    return this.consumerNameOf(0);
  }

  consumerNameOf(shard: number): string {
    return membershipConsumerName(this.runtime.subjects.namespace, shard);
  }

  /** Starts every shard's consumer; if one cannot start, none is left running. */
  async start(): Promise<void> {
    await startAll(this.reactors);
  }

  async stop(): Promise<void> {
    await Promise.all(this.reactors.map((r) => r.stop()));
  }

  /** Per shard, events not yet reacted to (pending plus unacknowledged), from the consumer's state on the server; null when it does not exist. */
  async lag(): Promise<{ shard: number; stream: string; consumer: string; lag: number | null }[]> {
    return Promise.all(
      this.reactors.map(async (r) => ({
        shard: r.shard.shard,
        stream: r.shard.stream,
        consumer: r.consumerName,
        lag: await consumerLag(this.runtime.nats.jsm, r.shard.stream, r.consumerName).catch(() => null),
      })),
    );
  }
}
