import type { ClickHouseMigration } from './index.js';

/**
 * With several log shards (STREAM_SHARDS) every shard's stream numbers its
 * events from 1, so a sequence alone no longer names an event. `events` is
 * already keyed by (shard, epoch, seq); what still pointed at a sequence
 * alone gets the shard it is a sequence of:
 * - `events.ref_shard`: the shard of `ref_seq`. A read or delivered marker,
 *   or a membership event, is stored on a user's subject but points at a
 *   sequence of its conversation's shard, which may be another one.
 * - `deliveries.shard`: the shard of the message event `seq` names (its
 *   conversation's).
 * Both default to 0: every row written before is of a one-shard log.
 */
export const m0007ShardRefs: ClickHouseMigration = {
  name: '0007_shard_refs',
  statements: [
    `ALTER TABLE {db}.events ADD COLUMN IF NOT EXISTS ref_shard UInt16 DEFAULT 0 AFTER ref_seq`,
    `ALTER TABLE {db}.deliveries ADD COLUMN IF NOT EXISTS shard UInt16 DEFAULT 0 AFTER at`,
  ],
};
