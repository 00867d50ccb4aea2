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

// base64url that works in browsers (no Buffer there) and takes Node's native path when it can: a
// gateway encodes one position per event frame it builds.
interface NodeBufferLike {
  from(input: string, encoding: 'utf8' | 'base64url'): Uint8Array & { toString(encoding: 'base64url'): string };
}
const NodeBuffer = (globalThis as { Buffer?: NodeBufferLike }).Buffer;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const BASE64URL = /^[A-Za-z0-9_-]*$/;

function toBase64Url(text: string): string {
  if (NodeBuffer) return NodeBuffer.from(text, 'utf8').toString('base64url');
  let bin = '';
  for (const b of new TextEncoder().encode(text)) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(b64: string): string {
  // Node's decoder skips characters it does not know; a token with any is refused as atob would.
  if (!BASE64URL.test(b64) || b64.length % 4 === 1) throw new Error('not base64url');
  if (NodeBuffer) return utf8.decode(NodeBuffer.from(b64, 'base64url'));
  const bin = atob(b64.replace(/-/g, '+').replace(/_/g, '/'));
  return utf8.decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

/**
 * Per-conversation rewinds: "replay conversation X from after this sequence",
 * kept while a device has seen `membership.joined` for X but not yet X's
 * history (a catch-up interrupted by a disconnect would otherwise be skipped,
 * because other conversations' events moved the position past it).
 */
const Rewinds = z.record(z.string().regex(/^[dgc]_[A-Za-z0-9_-]+$/), z.number().int().nonnegative());
const TokenShape = z.strictObject({ v: z.literal(1), p: z.array(ShardPosition).max(1024), r: Rewinds.optional() });
const PREFIX = 'p1.';

/** Encodes a full position (every shard, and any conversation rewinds) as the opaque token. */
export function encodePosition(parts: ShardPosition[], rewinds: Record<string, number> = {}): string {
  const sorted = [...parts].sort((a, b) => a.shard - b.shard);
  const r = Object.keys(rewinds).length ? { r: rewinds } : {};
  return PREFIX + toBase64Url(JSON.stringify({ v: 1, p: sorted, ...r }));
}

function decodeToken(token: string): { p: ShardPosition[]; r: Record<string, number> } | null {
  if (!token.startsWith(PREFIX) || token.length > 65_536) return null;
  try {
    const parsed = TokenShape.safeParse(JSON.parse(fromBase64Url(token.slice(PREFIX.length))));
    return parsed.success ? { p: parsed.data.p, r: parsed.data.r ?? {} } : null;
  } catch {
    return null;
  }
}

/** The conversation rewinds a token carries (conversation id -> replay after this sequence). */
export function rewindsOf(token: string | null): Record<string, number> {
  return (token && decodeToken(token)?.r) || {};
}

/** Adds (or lowers) a rewind for `conversationId`; removes it when `afterSeq` is null. */
export function withRewind(token: string, conversationId: string, afterSeq: number | null): string {
  const t = decodeToken(token);
  if (!t) return token;
  const r = { ...t.r };
  if (afterSeq === null) delete r[conversationId];
  else r[conversationId] = Math.min(afterSeq, r[conversationId] ?? afterSeq);
  return encodePosition(t.p, r);
}

export function encodeShardPosition(pos: ShardPosition): string {
  return encodePosition([pos]);
}

/** Decodes a token; returns null when it is not a token this server could have issued. */
export function decodePosition(token: string): ShardPosition[] | null {
  return decodeToken(token)?.p ?? null;
}

/** Folds an event's `pos` into a device token: per shard, the later sequence wins (a new epoch always wins). */
export function advancePosition(token: string | null, eventPos: string): string {
  const current = token ? (decodePosition(token) ?? []) : [];
  const rewinds = rewindsOf(token);
  const incoming = decodePosition(eventPos) ?? [];
  const byShard = new Map(current.map((p) => [p.shard, p]));
  for (const p of incoming) {
    const prev = byShard.get(p.shard);
    if (!prev || prev.epoch !== p.epoch || p.seq > prev.seq) byShard.set(p.shard, p);
  }
  return encodePosition([...byShard.values()], rewinds);
}

export const PositionToken = z.string().min(1).max(65_536).refine((s) => decodePosition(s) !== null, {
  message: 'not a sync position token',
});

/** The token with `shard`'s sequence lowered to at most `seq` (to resume from before a detected gap). */
export function rewindPosition(token: string, shard: number, seq: number): string {
  const parts = decodePosition(token) ?? [];
  return encodePosition(parts.map((p) => (p.shard === shard ? { ...p, seq: Math.min(p.seq, seq) } : p)), rewindsOf(token));
}

/** The sequence a token holds for `shard` (0 when absent or unreadable). */
export function positionSeq(token: string | null, shard = 0): number {
  return (token && decodePosition(token)?.find((p) => p.shard === shard)?.seq) || 0;
}
