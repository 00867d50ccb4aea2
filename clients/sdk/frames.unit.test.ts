import { describe, expect, it } from 'vitest';
import { ServerFrame } from '../../contracts/index.js';
import { encodeShardPosition } from '../../contracts/position.js';
import { parseServerFrame } from './frames.js';

const pos = encodeShardPosition({ shard: 0, epoch: 'e1', seq: 7 });
const event = {
  t: 'event',
  entity: { kind: 'conv', id: 'g_1' },
  seq: 7,
  prevSeq: 3,
  pos,
  event: { type: 'message.sent', v: 1, at: 1_700_000_000_000, actor: 'alice', data: { conversationId: 'g_1', messageId: '12', clientMsgId: 'c1', text: 'hi' } },
};

/** Frames the server sends, each valid under the contracts' zod schema. */
const valid: Record<string, unknown> = {
  welcome: { t: 'welcome', userId: 'alice', connectionId: 'c', serverTime: 1, heartbeatMs: 60_000, limits: { maxFrameBytes: 65_536, maxTextCodePoints: 4000 } },
  ack: { t: 'ack', id: 'r1', result: { seq: 7, pos } },
  pong: { t: 'pong', id: 'r2', serverTime: 5 },
  error: { t: 'error', id: 'r3', code: 'rate_limited', message: 'slow down', retryable: true, retryAfterMs: 500 },
  event,
  typing: { t: 'typing', conversationId: 'g_1', userId: 'bob', expiresAt: 10 },
  receipt: { t: 'receipt', conversationId: 'g_1', userId: 'bob', kind: 'read', seq: 7 },
  synced: { t: 'synced', status: 'resync_needed', position: pos, replayed: 0, resync: { reason: 'too_far_behind', conversations: ['g_1'] } },
};

/** Each breaks a field the SDK acts on. */
const invalid: [string, unknown][] = [
  ['event without pos', { ...event, pos: undefined }],
  ['event with a string seq', { ...event, seq: '7' }],
  ['event with a fractional prevSeq', { ...event, prevSeq: 1.5 }],
  ['event with a negative prevSeq', { ...event, prevSeq: -1 }],
  ['event of an unknown entity kind', { ...event, entity: { kind: 'room', id: 'x' } }],
  ['event without its envelope actor', { ...event, event: { ...event.event, actor: undefined } }],
  ['event whose data is not an object', { ...event, event: { ...event.event, data: 'x' } }],
  ['synced with an unknown status', { ...(valid.synced as object), status: 'done' }],
  ['synced without position', { ...(valid.synced as object), position: null }],
  ['ack without id', { t: 'ack', result: {} }],
  ['error without retryable', { t: 'error', code: 'x', message: 'y' }],
  ['receipt of an unknown kind', { ...(valid.receipt as object), kind: 'seen' }],
  ['typing without userId', { t: 'typing', conversationId: 'g_1', expiresAt: 1 }],
  ['a frame with a numeric type', { t: 5 }],
  ['an array', [1, 2]],
];

describe('the SDK checks server frames without zod', () => {
  it.each(Object.entries(valid))('accepts a valid %s frame (as the contracts do)', (_t, frame) => {
    expect(ServerFrame.safeParse(frame).success).toBe(true);
    expect(parseServerFrame(JSON.stringify(frame))).toEqual({ frame });
  });

  it.each(invalid)('refuses %s (as the contracts do)', (_what, frame) => {
    expect(ServerFrame.safeParse(frame).success).toBe(false);
    expect(parseServerFrame(JSON.stringify(frame))).toHaveProperty('invalid');
  });

  it('skips frame types it does not know, and refuses what is not JSON', () => {
    expect(parseServerFrame('{"t":"future_frame","x":1}')).toEqual({ unknownType: 'future_frame' });
    expect(parseServerFrame('{nope')).toEqual({ invalid: 'not JSON' });
  });
});
