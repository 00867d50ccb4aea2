import { inSchema } from '../projection/checkpoint.js';
import type { Projection, ProjectorDeps } from '../projection/projection.js';
import { replay, type ReplayOptions, type ReplayResult } from './replay.js';

export interface ShardsReplayOptions extends Omit<ReplayOptions, 'shard' | 'only' | 'untilSeq' | 'onProgress'> {
  schema: string;
  /** Each shard's checkpoint in the schema when the replay starts, index k for shard k. */
  from: number[];
  /** Each shard's last sequence to replay; default: the stream's last sequence when the replay starts. */
  until?: number[];
  onProgress?: (p: { checkpoint: number; applied: number; shard?: number; subjects?: 'conv' | 'user' }) => void;
}

/**
 * Replays every shard of the log into a rebuild's shadow schema, each from
 * its checkpoint there. With one shard, the log in its order (replay.ts).
 * With several, a user's events (markers, preferences) change member rows
 * that conversation events of another shard make, and nothing orders two
 * streams: every shard's conversation subjects are replayed first, then
 * every shard's user subjects over the same range, after which every
 * checkpoint stands at its shard's end of the range. Every projection is
 * idempotent per entity, and an entity is either a conversation or a user,
 * so each event is applied exactly once either way.
 */
export async function replayShards(deps: ProjectorDeps, projection: Projection, options: ShardsReplayOptions): Promise<ReplayResult> {
  const { from, until: given, onProgress, ...base } = options;
  const total: ReplayResult = { checkpoint: from[0] ?? 0, applied: 0, parked: 0, held: 0 };
  const several = deps.shards.length > 1;
  const pass = async (only: 'conv' | 'user' | undefined, until: number[] | undefined) => {
    for (const shard of deps.shards) {
      const r = await replay(deps, projection, {
        ...base,
        shard: shard.shard,
        ...(only ? { only } : {}),
        ...(until ? { untilSeq: until[shard.shard]! } : {}),
        onProgress: (p) => onProgress?.({ ...p, ...(several ? { shard: shard.shard, subjects: only } : {}) }),
      });
      if (shard.shard === 0) total.checkpoint = r.checkpoint;
      total.applied += r.applied;
      total.parked += r.parked;
      total.held += r.held;
    }
  };
  if (!several) {
    await pass(undefined, given);
    return total;
  }
  const until = given ?? (await Promise.all(deps.shards.map(async (s) => (await deps.nats.jsm.streams.info(s.stream)).state.last_seq)));
  await pass('conv', until);
  await setCheckpoints(deps, options.schema, projection.name, (k) => from[k]!);
  await pass('user', until);
  await setCheckpoints(deps, options.schema, projection.name, (k) => Math.max(from[k]!, until[k]!));
  total.checkpoint = Math.max(from[0]!, until[0]!);
  return total;
}

async function setCheckpoints(deps: ProjectorDeps, schema: string, projector: string, seqOf: (shard: number) => number): Promise<void> {
  await inSchema(deps.db, schema, async (trx) => {
    for (const shard of deps.shards)
      await trx
        .updateTable('projector_checkpoints')
        .set({ seq: seqOf(shard.shard) })
        .where('projector', '=', projector)
        .where('shard', '=', shard.shard)
        .execute();
  });
}
