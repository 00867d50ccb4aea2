/**
 * The sync position token's encoding and folding, without a schema library:
 * shared by the server and the SDK (browser bundles stay small). position.ts
 * adds the zod schemas and re-exports all of this.
 */
export interface ShardPosition {
  shard: number;
  epoch: string;
  seq: number;
}

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
const REWIND_KEY = /^[dgc]_[A-Za-z0-9_-]+$/;
const PREFIX = 'p1.';

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const hasOnlyKeys = (o: object, allowed: readonly string[]) => Object.keys(o).every((k) => allowed.includes(k));
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checked by hand rather than with zod, so the SDK (which folds positions on
 * every event) carries no schema library into browser bundles. Exactly the
 * shape `{v: 1, p: ShardPosition[] (at most 1024), r?: {conversationId: seq}}`,
 * no other keys; `ShardPosition` in position.ts is the same shape as a schema.
 */
function isShardPosition(v: unknown): v is ShardPosition {
  return (
    isObject(v) &&
    hasOnlyKeys(v, ['shard', 'epoch', 'seq']) &&
    isCount(v.shard) &&
    isCount(v.seq) &&
    typeof v.epoch === 'string' &&
    v.epoch.length >= 1 &&
    v.epoch.length <= 64
  );
}

function tokenShape(v: unknown): { p: ShardPosition[]; r: Record<string, number> } | null {
  if (!isObject(v) || !hasOnlyKeys(v, ['v', 'p', 'r']) || v.v !== 1) return null;
  if (!Array.isArray(v.p) || v.p.length > 1024 || !v.p.every(isShardPosition)) return null;
  if (v.r === undefined) return { p: v.p, r: {} };
  if (!isObject(v.r) || !Object.entries(v.r).every(([k, seq]) => REWIND_KEY.test(k) && isCount(seq))) return null;
  return { p: v.p, r: v.r as Record<string, number> };
}

/** Encodes a full position (every shard, and any conversation rewinds) as the opaque token. */
export function encodePosition(parts: ShardPosition[], rewinds: Record<string, number> = {}): string {
  const sorted = [...parts].sort((a, b) => a.shard - b.shard);
  const r = Object.keys(rewinds).length ? { r: rewinds } : {};
  return PREFIX + toBase64Url(JSON.stringify({ v: 1, p: sorted, ...r }));
}

function decodeToken(token: string): { p: ShardPosition[]; r: Record<string, number> } | null {
  if (!token.startsWith(PREFIX) || token.length > 65_536) return null;
  try {
    return tokenShape(JSON.parse(fromBase64Url(token.slice(PREFIX.length))));
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

/** The token with `shard`'s sequence lowered to at most `seq` (to resume from before a detected gap). */
export function rewindPosition(token: string, shard: number, seq: number): string {
  const parts = decodePosition(token) ?? [];
  return encodePosition(
    parts.map((p) => (p.shard === shard ? { ...p, seq: Math.min(p.seq, seq) } : p)),
    rewindsOf(token),
  );
}

/** The sequence a token holds for `shard` (0 when absent or unreadable). */
export function positionSeq(token: string | null, shard = 0): number {
  return (token && decodePosition(token)?.find((p) => p.shard === shard)?.seq) || 0;
}
