import { describe, expect, it } from 'vitest';
import { encodePosition } from '../../../contracts/index.js';
import { combinedResync, shardRanges } from './shard-ranges.js';

const shards = [
  { shard: 0, stream: 's0', epoch: 'e0' },
  { shard: 1, stream: 's1', epoch: 'e1' },
];
const bounds = [
  { firstSeq: 1, lastSeq: 50 },
  { firstSeq: 1, lastSeq: 70 },
];
const members = (k: number) => (k === 0 ? ['g_a', 'g_b'] : ['g_c']);

describe('per-shard resume ranges', () => {
  it('replays each shard from its own entry up to its own end', () => {
    const ranges = shardRanges(
      encodePosition([
        { shard: 1, epoch: 'e1', seq: 60 },
        { shard: 0, epoch: 'e0', seq: 40 },
      ]),
      shards,
      bounds,
    );
    expect(ranges.map((r) => [r.from, r.until, r.resync])).toEqual([
      [40, 50, null],
      [60, 70, null],
    ]);
    expect(combinedResync(ranges, members)).toBeNull();
  });

  it('answers for a shard the token cannot resume: its conversations, the others replayed', () => {
    const missing = shardRanges(encodePosition([{ shard: 0, epoch: 'e0', seq: 40 }]), shards, bounds);
    expect(missing.map((r) => [r.from, r.until])).toEqual([
      [40, 50],
      [70, 70],
    ]);
    expect(combinedResync(missing, members)).toEqual({ reason: 'invalid_position', conversations: ['g_c'] });
    const otherEpoch = shardRanges(
      encodePosition([
        { shard: 0, epoch: 'old', seq: 40 },
        { shard: 1, epoch: 'e1', seq: 60 },
      ]),
      shards,
      bounds,
    );
    expect(combinedResync(otherEpoch, members)).toEqual({ reason: 'epoch_changed', conversations: ['g_a', 'g_b'] });
    const ahead = shardRanges(
      encodePosition([
        { shard: 0, epoch: 'e0', seq: 40 },
        { shard: 1, epoch: 'e1', seq: 71 },
      ]),
      shards,
      bounds,
    );
    expect(combinedResync(ahead, members)).toEqual({ reason: 'invalid_position', conversations: ['g_c'] });
  });

  it('needs everything refetched only when every shard does (as one shard always did)', () => {
    expect(combinedResync(shardRanges(null, shards, bounds), members)).toEqual({ reason: 'no_position', conversations: null });
    expect(combinedResync(shardRanges('garbage', shards, bounds), members)).toEqual({ reason: 'invalid_position', conversations: null });
    const one = shardRanges(encodePosition([{ shard: 0, epoch: 'old', seq: 1 }]), shards.slice(0, 1), bounds.slice(0, 1));
    expect(combinedResync(one, members)).toEqual({ reason: 'epoch_changed', conversations: null });
  });

  it('names the most fundamental reason and lists every shard that needs one', () => {
    const ranges = shardRanges(
      encodePosition([
        { shard: 0, epoch: 'e0', seq: 40 },
        { shard: 1, epoch: 'e1', seq: 60 },
      ]),
      shards,
      bounds,
    );
    ranges[0]!.resync = { reason: 'too_far_behind', conversations: ['g_a'] };
    ranges[1]!.resync = { reason: 'retention', conversations: ['g_c'] };
    expect(combinedResync(ranges, members)).toEqual({ reason: 'retention', conversations: ['g_a', 'g_c'] });
  });
});
