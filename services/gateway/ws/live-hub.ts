import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { parseStoredEvent, type EntityKind, type Subjects } from '../../../contracts/index.js';
import type { Logger } from '../../observability/logger.js';
import { PREV_SEQ_HEADER, type StoredEvent } from '../../event-log/event-store.js';
import type { ShardInfo } from '../../event-log/streams.js';
import { eventFrame } from './event-frame.js';

/** How long a live gap's repair is retried (the log refusing reads between leaders) before later events go out anyway. */
const REPAIR_BUDGET_MS = 60_000;
/** Live events of one entity held behind an unrepaired gap at most; beyond, they go out and clients resume. */
const REPAIR_MAX_WAITING = 10_000;

/** Publishes a ready-made frame to every local socket subscribed to a topic (uWebSockets' C++ fan-out). */
export type TopicPublisher = (topic: string, frame: string) => void;

/** Receives the frames of a topic while a connection on it is still replaying (seq 0: ephemeral frames). */
export interface FrameSink {
  /** The connection's user: ephemeral frames sent by this user are not pushed to it. */
  readonly userId?: string;
  /** `shard`: the log shard whose sequence `seq` is (sequences of different shards are unrelated). */
  push(shard: number, seq: number, frame: string): void;
}

/** Names the user who caused an ephemeral frame (typing), so it is not echoed to that user's own connections. */
export const EPHEMERAL_SENDER_HEADER = 'Parley-Sender';

/** Publishes a frame to a topic's local sockets except one user's; false when that user has none there. */
export type TopicPublisherExcept = (topic: string, frame: string, exceptUserId: string) => boolean;

/** Reads the stored events of one subject in (afterSeq, untilSeq], to repair a gap in live delivery. */
export type GapSource = (subject: string, afterSeq: number, untilSeq: number) => Promise<StoredEvent[]>;

/** Told about every event frame delivered live (for delivery-latency metrics). */
export type DeliveryObserver = (kind: EntityKind, id: string, seq: number, eventJson: string) => void;

export function topicFor(kind: EntityKind, id: string): string {
  return `${kind}/${id}`;
}

interface Entry {
  kind: EntityKind;
  id: string;
  refs: number;
  subs: Subscription[];
  /** Last sequence delivered for the entity (in its one shard); null until the first live event. */
  lastSeq: number | null;
  /** While a gap is being repaired from the log, later live messages wait here, in order. */
  waiting: Msg[] | null;
  sinks: Set<FrameSink>;
}

const decoder = new TextDecoder();

function isReadableEvent(json: string): boolean {
  try {
    parseStoredEvent(JSON.parse(json));
    return true;
  } catch {
    return false;
  }
}

/**
 * One NATS subscription per entity that any local connection needs, however
 * many local connections need it. Each live event becomes a frame once and
 * goes to uWebSockets' topic publish, so a message to a group of 5,000 costs
 * one NATS delivery per gateway, not one per member.
 *
 * Continuity is checked per entity from the republished `Nats-Last-Sequence`
 * header: a live event whose previous sequence is not the last one delivered
 * means core NATS dropped something, and the missing events are read from the
 * log and delivered, in order, before anything newer.
 *
 * Every shard's stream republishes into the one live subject space; the
 * `Nats-Stream` header says whose sequences a message carries, and its
 * frame's `pos` names that shard. An entity lives on one shard, so its
 * prevSeq chain, and hence the gap check, never mixes shards.
 */
export class LiveHub {
  private readonly entries = new Map<string, Entry>();
  /**
   * Called with every user event before its frame is delivered. A returned
   * promise holds that frame (and later ones of the user) until it settles:
   * a device must receive a joined conversation's history before the
   * `membership.joined` that announces it, or its position could pass
   * events it never got.
   */
  beforeUserFrame: ((userId: string, raw: string) => Promise<void> | null) | null = null;
  onDelivered: DeliveryObserver | null = null;
  /** Fan-out that skips one user's sockets (set by the socket server); without it, ephemeral frames go to everyone. */
  publishExcept: TopicPublisherExcept | null = null;
  gapsRepaired = 0;

  /** Every shard by its stream's name: what a live message's `Nats-Stream` header names. */
  private readonly byStream: Map<string, ShardInfo>;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    /** Every shard of the log, index k at k. */
    private readonly shards: readonly ShardInfo[],
    private readonly publish: TopicPublisher,
    private readonly gapSource: GapSource,
    private readonly log: Logger,
  ) {
    this.byStream = new Map(shards.map((s) => [s.stream, s]));
  }

  /** Counts a local interest in the entity; subscribes to its live subject on the first one. Returns the topic. */
  acquire(kind: EntityKind, id: string): string {
    const topic = topicFor(kind, id);
    const existing = this.entries.get(topic);
    if (existing) {
      existing.refs++;
      return topic;
    }
    const entry: Entry = { kind, id, refs: 1, subs: [], lastSeq: null, waiting: null, sinks: new Set() };
    const subject = kind === 'conv' ? this.subjects.liveConv(id) : this.subjects.liveUser(id);
    entry.subs.push(
      this.nc.subscribe(subject, {
        callback: (err, msg) => {
          if (err) return this.log.warn('live subscription error', { subject, err });
          this.receive(entry, topic, msg);
        },
      }),
    );
    if (kind === 'conv') {
      // Typing and receipts arrive as finished frames: forward them untouched.
      entry.subs.push(
        this.nc.subscribe(this.subjects.ephemeral(id), {
          callback: (err, msg) => {
            if (err) return;
            const frame = decoder.decode(msg.data);
            const sender = msg.headers?.get(EPHEMERAL_SENDER_HEADER) || null;
            for (const sink of entry.sinks) if (sender === null || sink.userId !== sender) sink.push(0, 0, frame);
            if (sender === null || !this.publishExcept?.(topic, frame, sender)) this.publish(topic, frame);
          },
        }),
      );
    }
    this.entries.set(topic, entry);
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

  /** Frames of `topic` also go to `sink` until removed (the topic must be acquired). */
  addSink(topic: string, sink: FrameSink): void {
    this.entries.get(topic)?.sinks.add(sink);
  }

  removeSink(topic: string, sink: FrameSink): void {
    this.entries.get(topic)?.sinks.delete(sink);
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

  /** Entry point for a live message (public for tests that inject gaps). */
  receive(entry: Entry | string, topic: string, msg: Msg): void {
    const e = typeof entry === 'string' ? this.entries.get(entry) : entry;
    if (!e) return;
    if (e.waiting) {
      e.waiting.push(msg);
      return;
    }
    const seq = Number(msg.headers?.get('Nats-Sequence'));
    const prevSeq = Number(msg.headers?.get('Nats-Last-Sequence') || 0);
    if (!Number.isSafeInteger(seq) || seq <= 0) return this.log.warn('live message without a stream sequence', { subject: msg.subject });
    const shard = this.shardOf(e, msg);
    if (!shard)
      return this.log.warn('live message from a stream that is no shard of this log', { subject: msg.subject, stream: msg.headers?.get('Nats-Stream') });
    if (e.lastSeq !== null && seq <= e.lastSeq) return; // already delivered (by a repair)
    if (e.lastSeq !== null && prevSeq > e.lastSeq) {
      e.waiting = [msg];
      void this.repair(e, topic, e.lastSeq, prevSeq);
      return;
    }
    const eventJson = decoder.decode(msg.data);
    // The write side validated what it appended (its appends carry PREV_SEQ_HEADER). Anything else was published
    // around it (a raw `nats pub`) and is checked here: a frame carries an event of the contracts, or nothing.
    // Resumes leave such an event out too; a device sees the hole in `prevSeq` and resumes past it.
    if (!msg.headers?.get(PREV_SEQ_HEADER) && !isReadableEvent(eventJson)) {
      e.lastSeq = seq;
      this.log.warn('live event not delivered: it cannot be read', { subject: msg.subject, seq });
      return;
    }
    this.emit(e, topic, shard, seq, prevSeq, eventJson);
  }

  /**
   * The shard whose sequences a live message carries: the one its `Nats-Stream` header names. Without the
   * header (a message not republished by a stream) it is the entity's own shard, where its events are stored.
   */
  private shardOf(e: Entry, msg: Msg): ShardInfo | undefined {
    const stream = msg.headers?.get('Nats-Stream');
    return stream ? this.byStream.get(stream) : this.shards[this.subjects.shardOf(e.id)];
  }

  private emit(e: Entry, topic: string, shard: ShardInfo, seq: number, prevSeq: number, eventJson: string): void {
    e.lastSeq = seq;
    const frame = eventFrame(shard, e.kind, e.id, seq, prevSeq, eventJson);
    const hold = e.kind === 'user' ? this.beforeUserFrame?.(e.id, eventJson) : null;
    if (hold) {
      e.waiting ??= [];
      void hold
        .catch((err) => this.log.error('user event hook failed', { userId: e.id, err }))
        .then(() => {
          this.deliverFrame(e, topic, shard.shard, seq, frame, eventJson);
          const queued = e.waiting ?? [];
          e.waiting = null;
          for (const msg of queued) this.receive(e, topic, msg);
        });
      return;
    }
    this.deliverFrame(e, topic, shard.shard, seq, frame, eventJson);
  }

  private deliverFrame(e: Entry, topic: string, shard: number, seq: number, frame: string, eventJson: string): void {
    for (const sink of e.sinks) sink.push(shard, seq, frame);
    this.publish(topic, frame);
    this.onDelivered?.(e.kind, e.id, seq, eventJson);
  }

  private async repair(e: Entry, topic: string, afterSeq: number, untilSeq: number, started = Date.now()): Promise<void> {
    // The stored subject is in the entity's shard: the gap source reads that shard's log.
    const subject = e.kind === 'conv' ? this.subjects.conv(e.id) : this.subjects.user(e.id);
    const shard = this.shards[this.subjects.shardOf(e.id)]!;
    try {
      const missing = await this.gapSource(subject, afterSeq, untilSeq);
      // The read is complete over (afterSeq, untilSeq] and afterSeq was delivered: each one's predecessor is known.
      let prev = afterSeq;
      for (const m of missing) {
        this.emit(e, topic, shard, m.seq, m.prevSeq ?? prev, JSON.stringify(m.event));
        prev = m.seq;
      }
      // The whole range was read: what the log did not return (unreadable, tombstoned) cannot be delivered, and
      // waiting for it would repair the same range forever.
      e.lastSeq = Math.max(e.lastSeq ?? 0, untilSeq);
      this.gapsRepaired++;
      this.log.warn('live delivery gap repaired from the log', { subject, afterSeq, untilSeq, events: missing.length });
    } catch (err) {
      // A log between leaders (a NATS node lost or cut off) refuses reads for a while: the entity's later live
      // events keep waiting behind the gap, and the repair is tried again, for up to REPAIR_BUDGET_MS. Only then
      // does what follows go out anyway: clients detect the hole from prevSeq and resume past it.
      const elapsed = Date.now() - started;
      if (elapsed < REPAIR_BUDGET_MS && (e.waiting?.length ?? 0) < REPAIR_MAX_WAITING && this.entries.get(topic) === e) {
        this.log.warn('live delivery gap not repaired yet; trying again', { subject, afterSeq, untilSeq, elapsedMs: elapsed, err });
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 250 * 2 ** Math.floor(elapsed / 2000))).unref());
        return this.repair(e, topic, afterSeq, untilSeq, started);
      }
      this.log.error('could not repair a live delivery gap', { subject, afterSeq, untilSeq, err });
      e.lastSeq = untilSeq;
    }
    const queued = e.waiting ?? [];
    e.waiting = null;
    for (const msg of queued) this.receive(e, topic, msg);
  }
}
