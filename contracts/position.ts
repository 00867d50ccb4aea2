import { z } from 'zod';

/**
 * A device's sync position: for every shard of the log, the stream's epoch
 * (which changes if the stream is ever recreated, making old sequence numbers
 * meaningless) and the last stream sequence the device has seen.
 *
 * On the wire it is an opaque string. Every pushed event carries `pos`, the
 * position component of its own shard; clients fold it into their token with
 * `advancePosition(token, pos)` (the SDK does this) and present the token when
 * they resume.
 */
export const ShardPosition = z.strictObject({
  shard: z.number().int().nonnegative(),
  epoch: z.string().min(1).max(64),
  seq: z.number().int().nonnegative(),
});
export type ShardPosition = z.infer<typeof ShardPosition>;

export {
  advancePosition,
  decodePosition,
  encodePosition,
  encodeShardPosition,
  positionSeq,
  rewindPosition,
  rewindsOf,
  withRewind,
} from './position-codec.js';
import { decodePosition } from './position-codec.js';
import type { ShardPosition as ShardPositionShape } from './position-codec.js';

// The codec's hand-written check and this schema describe the same shape: a change to one must change the other.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameShape: Same<ShardPosition, ShardPositionShape> = true;
void sameShape;

export const PositionToken = z
  .string()
  .min(1)
  .max(65_536)
  .refine((s) => decodePosition(s) !== null, {
    message: 'not a sync position token',
  });
