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

// Browser-safe base64url (the SDK runs in browsers, where Buffer does not exist).
function toBase64Url(text: string): string {
  let bin = '';
  for (const b of new TextEncoder().encode(text)) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(b64: string): string {
  const bin = atob(b64.replace(/-/g, '+').replace(/_/g, '/'));
  return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

const TokenShape = z.strictObject({ v: z.literal(1), p: z.array(ShardPosition).max(1024) });
const PREFIX = 'p1.';

function encode(parts: ShardPosition[]): string {
  const sorted = [...parts].sort((a, b) => a.shard - b.shard);
  return PREFIX + toBase64Url(JSON.stringify({ v: 1, p: sorted }));
}

export function encodeShardPosition(pos: ShardPosition): string {
  return encode([pos]);
}

/** Decodes a token; returns null when it is not a token this server could have issued. */
export function decodePosition(token: string): ShardPosition[] | null {
  if (!token.startsWith(PREFIX) || token.length > 65_536) return null;
  try {
    const json: unknown = JSON.parse(fromBase64Url(token.slice(PREFIX.length)));
    const parsed = TokenShape.safeParse(json);
    return parsed.success ? parsed.data.p : null;
  } catch {
    return null;
  }
}

/** Folds an event's `pos` into a device token: per shard, the later sequence wins (a new epoch always wins). */
export function advancePosition(token: string | null, eventPos: string): string {
  const current = token ? (decodePosition(token) ?? []) : [];
  const incoming = decodePosition(eventPos) ?? [];
  const byShard = new Map(current.map((p) => [p.shard, p]));
  for (const p of incoming) {
    const prev = byShard.get(p.shard);
    if (!prev || prev.epoch !== p.epoch || p.seq > prev.seq) byShard.set(p.shard, p);
  }
  return encode([...byShard.values()]);
}

export const PositionToken = z.string().min(1).max(65_536).refine((s) => decodePosition(s) !== null, {
  message: 'not a sync position token',
});
