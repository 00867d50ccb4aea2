import type { ParleyEvent, Subjects } from '../../contracts/index.js';
import type { AppendOptions, AppendResult, EventStore, LogEntry, StoredEvent } from './event-store.js';
import type { ShardInfo } from './streams.js';

/**
 * The whole log: one EventStore per shard stream (STREAM_SHARDS). Every
 * entity's events are on one subject of one shard, so everything the write
 * side does (append, read a subject, look up an event of a subject) goes to
 * the subject's shard and never spans two streams. Readers of a whole stream
 * (resume ranges, projectors) take the shard's own store with `shard(k)`:
 * sequences are only comparable within one shard.
 */
export class EventLog {
  constructor(
    private readonly subjects: Subjects,
    /** Every shard, index k at position k. */
    readonly shards: readonly ShardInfo[],
    private readonly stores: readonly EventStore[],
  ) {
    if (shards.length !== subjects.shards || stores.length !== subjects.shards)
      throw new Error(`the log has ${subjects.shards} shards; got ${shards.length} shard infos and ${stores.length} stores`);
  }

  /** The store of shard `k`. */
  shard(k: number): EventStore {
    const store = this.stores[k];
    if (!store) throw new RangeError(`no shard ${k} (the log has ${this.stores.length})`);
    return store;
  }

  /** Shard `k`'s stream and epoch. */
  info(k: number): ShardInfo {
    const info = this.shards[k];
    if (!info) throw new RangeError(`no shard ${k} (the log has ${this.shards.length})`);
    return info;
  }

  /** The shard holding a stored subject; a subject of no shard is a programming error. */
  shardOfSubject(subject: string): number {
    const k = this.subjects.shardOfSubject(subject);
    if (k === null) throw new Error(`${subject} is not a stored subject of this log`);
    return k;
  }

  /** The store holding `subject`. */
  storeFor(subject: string): EventStore {
    return this.shard(this.shardOfSubject(subject));
  }

  /** The shard (stream and epoch) holding `subject`: what positions of its events name. */
  infoFor(subject: string): ShardInfo {
    return this.info(this.shardOfSubject(subject));
  }

  append(subject: string, event: ParleyEvent, options?: AppendOptions): Promise<AppendResult> {
    return this.storeFor(subject).append(subject, event, options);
  }

  /** The event at `seq` of `subject`'s shard (sequences are per shard), or null. */
  getOn(subject: string, seq: number): Promise<StoredEvent | null> {
    return this.storeFor(subject).get(seq);
  }

  lastSubjectSeq(subject: string): Promise<number> {
    return this.storeFor(subject).lastSubjectSeq(subject);
  }

  previousOnSubject(subject: string, seq: number): Promise<number> {
    return this.storeFor(subject).previousOnSubject(subject, seq);
  }

  readSubject(subject: string, afterSeq: number): AsyncGenerator<StoredEvent> {
    return this.storeFor(subject).readSubject(subject, afterSeq);
  }

  readSubjectEntries(subject: string, afterSeq: number): AsyncGenerator<LogEntry> {
    return this.storeFor(subject).readSubjectEntries(subject, afterSeq);
  }

  readSubjectEntriesDirect(subject: string, afterSeq: number): AsyncGenerator<LogEntry> {
    return this.storeFor(subject).readSubjectEntriesDirect(subject, afterSeq);
  }

  reportUnreadable(reader: string, entry: { seq: number; subject: string; reason: string }): void {
    // Reported from a read of that very subject; a subject of no shard still gets reported (on shard 0).
    this.shard(this.subjects.shardOfSubject(entry.subject) ?? 0).reportUnreadable(reader, entry);
  }

  /** Lost races of appends without a caller-given expectation, over every shard. */
  get autoAppendConflicts(): number {
    return this.stores.reduce((sum, s) => sum + s.autoAppendConflicts, 0);
  }

  close(): void {
    for (const s of this.stores) s.close();
  }
}
