import { decodePosition, type SyncedFrame } from '../../../contracts/index.js';
import type { ShardInfo } from '../../event-log/streams.js';

export type ResyncReason = NonNullable<SyncedFrame['resync']>['reason'];
export type Resync = NonNullable<SyncedFrame['resync']>;

/**
 * One shard's part of a resume: it replays (from, until] of that shard's
 * stream. Sequences of different shards are unrelated, so every comparison a
 * resume makes (a conversation's last event, a join, a left conversation's
 * removal, a rewind) is against the range of the entity's own shard.
 */
export interface ShardRange {
  readonly info: ShardInfo;
  from: number;
  until: number;
  /** The stream's first sequence when the range was fixed: a position before it lost events to retention. */
  readonly firstSeq: number;
  /** Why this shard cannot be replayed from the token (null: it can). */
  resync: Resync | null;
}

/**
 * Every shard's range from the device's token and the bounds read after its
 * live buffers were registered. A token must name every shard: a missing
 * entry is as unusable as an undecodable token (`invalid_position`), an
 * entry of another epoch means the stream was recreated (`epoch_changed`).
 * A shard that cannot be replayed starts at its `until` (live from there).
 */
export function shardRanges(token: string | null, shards: readonly ShardInfo[], bounds: readonly { firstSeq: number; lastSeq: number }[]): ShardRange[] {
  const parts = token === null ? null : decodePosition(token);
  return shards.map((info, k) => {
    const { firstSeq, lastSeq: until } = bounds[k]!;
    const range: ShardRange = { info, from: until, until, firstSeq, resync: null };
    const mine = parts?.find((p) => p.shard === info.shard);
    if (token === null) range.resync = { reason: 'no_position', conversations: null };
    else if (!mine) range.resync = { reason: 'invalid_position', conversations: null };
    else if (mine.epoch !== info.epoch) range.resync = { reason: 'epoch_changed', conversations: null };
    else if (mine.seq > until) range.resync = { reason: 'invalid_position', conversations: null };
    else range.from = mine.seq;
    return range;
  });
}

/** The reason a combined answer gives when shards need a resync for different ones: the most fundamental. */
const REASON_ORDER: readonly ResyncReason[] = ['no_position', 'invalid_position', 'epoch_changed', 'retention', 'too_far_behind'];

/**
 * One continuity answer for the whole resume: complete only when every
 * shard's is. Otherwise it lists the conversations of the shards that need a
 * resync (a shard's whole list when it named none); null, "refetch
 * everything", only when every shard needs everything refetched (always the
 * case with one shard, so a one-shard answer is what it always was).
 */
export function combinedResync(ranges: readonly ShardRange[], conversationsOfShard: (shard: number) => string[]): Resync | null {
  const needing = ranges.filter((r) => r.resync !== null);
  if (needing.length === 0) return null;
  const reason = REASON_ORDER.find((reason) => needing.some((r) => r.resync!.reason === reason))!;
  if (needing.length === ranges.length && needing.every((r) => r.resync!.conversations === null)) return { reason, conversations: null };
  const ids = new Set<string>();
  for (const r of needing) for (const id of r.resync!.conversations ?? conversationsOfShard(r.info.shard)) ids.add(id);
  return { reason, conversations: [...ids] };
}
