import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { encodeShardPosition, type EntityKind, type Subjects } from '../../../contracts/index.js';
import type { Logger } from '../../shared/logger.js';
import type { ShardInfo } from '../../shared/nats/streams.js';

/** Publishes a ready-made frame to every local socket subscribed to a topic (uWebSockets' C++ fan-out). */
export type TopicPublisher = (topic: string, frame: string) => void;

export function topicFor(kind: EntityKind, id: string): string {
  return `${kind}/${id}`;
}

interface Entry {
  refs: number;
  subs: Subscription[];
}

const decoder = new TextDecoder();

/**
 * One NATS subscription per entity that any local connection needs, however
 * many local connections need it. Each live event is turned into a frame
 * once and handed to uWebSockets' topic publish, so a message to a group of
 * 5,000 costs one NATS delivery per gateway, not one per member.
 */
export class LiveHub {
  private readonly entries = new Map<string, Entry>();
  /** Observers of user events (the gateway reacts to membership changes). */
  onUserEvent: ((userId: string, raw: string) => void) | null = null;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly shard: ShardInfo,
    private readonly publish: TopicPublisher,
    private readonly log: Logger,
  ) {}

  /** Counts a local interest in the entity; subscribes to its live subject on the first one. Returns the topic. */
  acquire(kind: EntityKind, id: string): string {
    const topic = topicFor(kind, id);
    const entry = this.entries.get(topic);
    if (entry) {
      entry.refs++;
      return topic;
    }
    const subject = kind === 'conv' ? this.subjects.liveConv(id) : this.subjects.liveUser(id);
    const subs = [
      this.nc.subscribe(subject, {
        callback: (err, msg) => {
          if (err) return this.log.warn('live subscription error', { subject, err });
          this.deliver(kind, id, topic, msg);
        },
      }),
    ];
    if (kind === 'conv') {
      // Typing and receipts arrive as finished frames: forward them untouched.
      subs.push(
        this.nc.subscribe(this.subjects.ephemeral(id), {
          callback: (err, msg) => {
            if (!err) this.publish(topic, decoder.decode(msg.data));
          },
        }),
      );
    }
    this.entries.set(topic, { refs: 1, subs });
    return topic;
  }

  release(topic: string): void {
    const entry = this.entries.get(topic);
    if (!entry) return;
    entry.refs--;
    if (entry.refs <= 0) {
      for (const sub of entry.subs) sub.unsubscribe();
      this.entries.delete(topic);
    }
  }

  /** Entities with at least one local subscriber (for metrics and tests). */
  get size(): number {
    return this.entries.size;
  }

  refs(topic: string): number {
    return this.entries.get(topic)?.refs ?? 0;
  }

  close(): void {
    for (const e of this.entries.values()) for (const sub of e.subs) sub.unsubscribe();
    this.entries.clear();
  }

  private deliver(kind: EntityKind, id: string, topic: string, msg: Msg): void {
    const seq = Number(msg.headers?.get('Nats-Sequence'));
    const prevSeq = Number(msg.headers?.get('Nats-Last-Sequence') || 0);
    if (!Number.isSafeInteger(seq) || seq <= 0) {
      this.log.warn('live message without a stream sequence', { subject: msg.subject });
      return;
    }
    // The payload was validated when it was appended: splice it in as is.
    const raw = decoder.decode(msg.data);
    const pos = encodeShardPosition({ shard: this.shard.shard, epoch: this.shard.epoch, seq });
    const frame = `{"t":"event","entity":{"kind":"${kind}","id":"${id}"},"seq":${seq},"prevSeq":${prevSeq},"pos":"${pos}","event":${raw}}`;
    if (kind === 'user') this.onUserEvent?.(id, raw);
    this.publish(topic, frame);
    // Unescaped quotes only occur in JSON structure, so text cannot fake this.
    if (kind === 'conv' && raw.includes('"type":"message.sent"')) this.reportDelivery(seq, id, raw);
  }

  /**
   * Send-to-deliver timing for analytics (contracts/analytics.ts
   * `DeliveryTiming`): one small core-NATS record per message event per
   * gateway, not per socket, read off the raw payload without parsing it
   * (the envelope's `at` precedes `data`, so the first `"at":` is the event's).
   */
  private reportDelivery(seq: number, conversationId: string, raw: string): void {
    const at = /"at":(\d+)/.exec(raw)?.[1];
    if (at) this.nc.publish(this.subjects.metricsDelivery(), `{"seq":${seq},"conversationId":"${conversationId}","at":${at},"deliveredAt":${Date.now()}}`);
  }
}
