import { encodeShardPosition, type EntityKind } from '../../../contracts/index.js';
import type { ShardInfo } from '../../shared/nats/streams.js';

/**
 * The one place an event frame is serialised, live or replayed. The event's
 * JSON is spliced in as stored (it was validated when appended), so a live
 * event costs one string build per gateway however many sockets receive it.
 */
export function eventFrame(shard: ShardInfo, kind: EntityKind, id: string, seq: number, prevSeq: number | null, eventJson: string): string {
  const pos = encodeShardPosition({ shard: shard.shard, epoch: shard.epoch, seq });
  return `{"t":"event","entity":{"kind":"${kind}","id":"${id}"},"seq":${seq},"prevSeq":${prevSeq === null ? 'null' : prevSeq},"pos":"${pos}","event":${eventJson}}`;
}
