import type { ServerFrame } from '../../contracts/index.js';

/**
 * What the SDK checks of every frame from the server before acting on it,
 * written out by hand instead of with the contracts' zod schemas: those would
 * multiply a browser bundle's size several times over. Checked: the frame
 * type and every field the SDK or an application reads to decide something
 * (ids, sequences, positions, statuses, the event's envelope). Not checked:
 * the inside of an event's `data` beyond being an object (the server
 * validated it when it was stored; contracts/ has the full schemas for
 * applications that want them).
 */

type Check = (v: unknown) => boolean;
const obj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str: Check = (v) => typeof v === 'string';
const int: Check = (v) => typeof v === 'number' && Number.isSafeInteger(v);
const count: Check = (v) => int(v) && (v as number) >= 0;
const positive: Check = (v) => int(v) && (v as number) > 0;
const bool: Check = (v) => typeof v === 'boolean';
const oneOf =
  (...values: string[]): Check =>
  (v) =>
    typeof v === 'string' && values.includes(v);
const optional =
  (c: Check): Check =>
  (v) =>
    v === undefined || c(v);
const shape =
  (fields: Record<string, Check>): Check =>
  (v) =>
    obj(v) && Object.entries(fields).every(([k, c]) => c(v[k]));
const nullable =
  (c: Check): Check =>
  (v) =>
    v === null || c(v);
const arrayOf =
  (c: Check): Check =>
  (v) =>
    Array.isArray(v) && v.every(c);

const FRAMES: Record<string, Record<string, Check>> = {
  welcome: { userId: str, connectionId: str, serverTime: int, heartbeatMs: positive, limits: shape({ maxFrameBytes: positive, maxTextCodePoints: positive }) },
  ack: { id: str, result: obj },
  pong: { id: optional(str), serverTime: int },
  error: { id: optional(str), code: str, message: str, retryable: bool, retryAfterMs: optional(count) },
  event: {
    entity: shape({ kind: oneOf('conv', 'user'), id: str }),
    seq: positive,
    prevSeq: count,
    pos: str,
    event: shape({ type: str, v: positive, at: count, actor: str, data: obj }),
  },
  typing: { conversationId: str, userId: str, expiresAt: int },
  receipt: { conversationId: str, userId: str, kind: oneOf('read', 'delivered'), seq: positive },
  synced: {
    status: oneOf('complete', 'resync_needed'),
    position: str,
    replayed: count,
    resync: optional(shape({ reason: str, conversations: nullable(arrayOf(str)) })),
  },
};

export type FrameCheck = { frame: ServerFrame } | { unknownType: string } | { invalid: string };

/** Parses and checks one text frame: the frame, a type this SDK does not know (skip it), or why it is invalid. */
export function parseServerFrame(raw: string): FrameCheck {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return { invalid: 'not JSON' };
  }
  if (!obj(value) || typeof value.t !== 'string') return { invalid: 'not a frame object with a type' };
  const fields = FRAMES[value.t];
  // A newer server may send frame types this SDK predates: ignored, as the protocol asks.
  if (!fields) return { unknownType: value.t };
  for (const [name, check] of Object.entries(fields)) {
    if (!check(value[name])) return { invalid: `${value.t} frame: bad or missing ${name}` };
  }
  return { frame: value as unknown as ServerFrame };
}
