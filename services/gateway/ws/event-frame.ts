import { encodeShardPosition, parseEntitySubject, type EntityKind } from '../../../contracts/index.js';
import type { StoredEvent } from '../../event-log/event-store.js';
import type { ShardInfo } from '../../event-log/streams.js';

/** An event frame in two fixed parts around its `prevSeq`, the only part that depends on the receiver. */
interface FrameParts {
  head: string;
  tail: string;
}

/**
 * The one place an event frame is serialised, live or replayed. The event's
 * JSON is spliced in as stored (it was validated when appended), so a live
 * event costs one string build per gateway however many sockets receive it.
 */
function frameParts(shard: ShardInfo, kind: EntityKind, id: string, seq: number, eventJson: string): FrameParts {
  const pos = encodeShardPosition({ shard: shard.shard, epoch: shard.epoch, seq });
  return { head: `{"t":"event","entity":{"kind":"${kind}","id":"${id}"},"seq":${seq},"prevSeq":`, tail: `,"pos":"${pos}","event":${eventJson}}` };
}

function join(parts: FrameParts, prevSeq: number): string {
  return parts.head + String(prevSeq) + parts.tail;
}

/**
 * `prevSeq` is the sequence of the previous event stored on the same entity
 * (0: none), the same on every path: live (the server's `Nats-Last-Sequence`),
 * replayed or caught up (the `Parley-Prev-Seq` header every append stores, see
 * event-store.ts). So one event is one frame, byte for byte, however it arrives.
 */
export function eventFrame(shard: ShardInfo, kind: EntityKind, id: string, seq: number, prevSeq: number, eventJson: string): string {
  return join(frameParts(shard, kind, id, seq, eventJson), prevSeq);
}

const partsByEvent = new WeakMap<object, FrameParts>();

/**
 * The frame of a stored event, its fixed parts built once per event object:
 * the recent log hands the same object to every resume of a reconnect storm.
 */
export function storedEventFrame(shard: ShardInfo, stored: StoredEvent, prevSeq: number): string {
  let parts = partsByEvent.get(stored.event);
  if (!parts) {
    const entity = parseEntitySubject(stored.subject);
    if (!entity) throw new Error(`not an event subject: ${stored.subject}`);
    parts = frameParts(shard, entity.kind, entity.id, stored.seq, JSON.stringify(stored.event));
    partsByEvent.set(stored.event, parts);
  }
  return join(parts, prevSeq);
}
