import type { Subjects } from '../../../contracts/index.js';
import type { ShardInfo } from '../../event-log/streams.js';
import type { CoalescedBounds } from './coalesced-bounds.js';
import type { EventReader } from './recent-log.js';

/** What a resume needs of one shard: its identity, replay reads (its recent log) and its stream bounds. */
export interface ShardReader {
  readonly info: ShardInfo;
  readonly reader: EventReader;
  readonly bounds: CoalescedBounds;
}

/**
 * The log's shards as replay reads see them, one reader and one bounds per
 * shard stream: sequences are per shard, so a read range, a window of recent
 * events or a stream's bounds only ever means something within one shard.
 */
export class ShardReaders {
  constructor(
    private readonly subjects: Subjects,
    /** Index k holds shard k. */
    readonly all: readonly ShardReader[],
  ) {
    if (all.length !== subjects.shards || all.some((s, k) => s.info.shard !== k))
      throw new Error(`expected readers of shards 0..${subjects.shards - 1}, in order`);
  }

  get count(): number {
    return this.all.length;
  }

  shard(k: number): ShardReader {
    const s = this.all[k];
    if (!s) throw new RangeError(`no shard ${k} (the log has ${this.all.length})`);
    return s;
  }

  /** The shard holding an entity's (conversation's or user's) events. */
  ofEntity(id: string): ShardReader {
    return this.shard(this.subjects.shardOf(id));
  }

  /** The shard holding a stored subject. */
  ofSubject(subject: string): ShardReader {
    const k = this.subjects.shardOfSubject(subject);
    if (k === null) throw new Error(`${subject} is not a stored subject of this log`);
    return this.shard(k);
  }

  /** Every shard's bounds, each read after this call (see CoalescedBounds). */
  readBounds(): Promise<{ firstSeq: number; lastSeq: number }[]> {
    return Promise.all(this.all.map((s) => s.bounds.read()));
  }
}
