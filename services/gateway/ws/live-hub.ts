import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { EntityKind, Subjects } from '../../../contracts/index.js';
import type { Logger } from '../../shared/logger.js';
import type { StoredEvent } from '../../shared/nats/event-store.js';
import type { ShardInfo } from '../../shared/nats/streams.js';
import { eventFrame } from './event-frame.js';

/** Publishes a ready-made frame to every local socket subscribed to a topic (uWebSockets' C++ fan-out). */
export type TopicPublisher = (topic: string, frame: string) => void;

/** Receives the frames of a topic while a connection on it is still replaying (seq 0: ephemeral frames). */
export interface FrameSink {
  push(seq: number, frame: string): void;
}

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
  /** Last sequence delivered for the entity; null until the first live event. */
  lastSeq: number | null;
  /** While a gap is being repaired from the log, later live messages wait here, in order. */
  waiting: Msg[] | null;
  sinks: Set<FrameSink>;
}

const decoder = new TextDecoder();

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
  gapsRepaired = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly shard: ShardInfo,
    private readonly publish: TopicPublisher,
    private readonly gapSource: GapSource,
    private readonly log: Logger,
  ) {}

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
            for (const sink of entry.sinks) sink.push(0, frame);
            this.publish(topic, frame);
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
    if (e.lastSeq !== null && seq <= e.lastSeq) return; // already delivered (by a repair)
    if (e.lastSeq !== null && prevSeq > e.lastSeq) {
      e.waiting = [msg];
      void this.repair(e, topic, e.lastSeq, prevSeq);
      return;
    }
    this.emit(e, topic, seq, prevSeq, decoder.decode(msg.data));
  }

  private emit(e: Entry, topic: string, seq: number, prevSeq: number | null, eventJson: string): void {
    e.lastSeq = seq;
    const frame = eventFrame(this.shard, e.kind, e.id, seq, prevSeq, eventJson);
    const hold = e.kind === 'user' ? this.beforeUserFrame?.(e.id, eventJson) : null;
    if (hold) {
      e.waiting ??= [];
      void hold
        .catch((err) => this.log.error('user event hook failed', { userId: e.id, err }))
        .then(() => {
          this.deliverFrame(e, topic, seq, frame, eventJson);
          const queued = e.waiting ?? [];
          e.waiting = null;
          for (const msg of queued) this.receive(e, topic, msg);
        });
      return;
    }
    this.deliverFrame(e, topic, seq, frame, eventJson);
  }

  private deliverFrame(e: Entry, topic: string, seq: number, frame: string, eventJson: string): void {
    for (const sink of e.sinks) sink.push(seq, frame);
    this.publish(topic, frame);
    this.onDelivered?.(e.kind, e.id, seq, eventJson);
  }

  private async repair(e: Entry, topic: string, afterSeq: number, untilSeq: number): Promise<void> {
    const subject = e.kind === 'conv' ? this.subjects.conv(e.id) : this.subjects.user(e.id);
    try {
      const missing = await this.gapSource(subject, afterSeq, untilSeq);
      let prev: number | null = afterSeq;
      for (const m of missing) {
        this.emit(e, topic, m.seq, prev, JSON.stringify(m.event));
        prev = m.seq;
      }
      this.gapsRepaired++;
      this.log.warn('live delivery gap repaired from the log', { subject, afterSeq, untilSeq, events: missing.length });
    } catch (err) {
      // Deliver what follows anyway: clients detect the hole from prevSeq and resume.
      this.log.error('could not repair a live delivery gap', { subject, afterSeq, untilSeq, err });
      e.lastSeq = untilSeq;
    }
    const queued = e.waiting ?? [];
    e.waiting = null;
    for (const msg of queued) this.receive(e, topic, msg);
  }
}
