/**
 * Which shard of the log holds an entity (a conversation or a user).
 *
 * The shard of an entity must never change while the deployment runs: each
 * entity's events form one chain in one stream (per-subject sequences,
 * expected-last-sequence appends, positions per shard). So the function
 * depends on nothing but the entity id and the shard count (STREAM_SHARDS):
 * FNV-1a 32 over the id's UTF-8 bytes, unsigned, modulo the shard count.
 * It is spelled out here rather than taken from a library so that every
 * process, every version and the SDK compute the same answer; the fixed
 * vectors in shards.unit.test.ts pin it.
 */
const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const utf8 = new TextEncoder();

/** FNV-1a 32-bit hash of `text`'s UTF-8 bytes, as an unsigned integer. */
export function fnv1a32(text: string): number {
  let hash = FNV_OFFSET_BASIS;
  for (const byte of utf8.encode(text)) {
    hash ^= byte;
    // Math.imul keeps the multiplication in 32 bits, as the algorithm specifies.
    hash = Math.imul(hash, FNV_PRIME);
  }
  return hash >>> 0;
}

/** The shard (0..shardCount-1) holding `entityId`'s events. One shard: always 0. */
export function shardOf(entityId: string, shardCount: number): number {
  if (!Number.isSafeInteger(shardCount) || shardCount < 1) throw new RangeError(`shard count must be a positive integer, got ${shardCount}`);
  return shardCount === 1 ? 0 : fnv1a32(entityId) % shardCount;
}
