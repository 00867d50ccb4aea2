import { describe, expect, it } from 'vitest';
import {
  advancePosition,
  decodePosition,
  encodeShardPosition,
  MessageText,
  shouldReconnect,
  CloseCode,
  parseStoredEvent,
  subjectsFor,
  parseEntitySubject,
} from './index.js';

describe('message text policy', () => {
  it.each([
    ['emoji ZWJ sequence', '👩‍👩‍👧‍👦'],
    ['CJK', '请问亚麻recruiter嘉宾，能给个内推吗？感谢'],
    ['RTL', 'שלום עולם'],
    ['zero-width characters', 'a\u200Bb\u200Cc\u200Dd\uFEFF'],
    ['bidi isolates and marks', '\u2067abc\u2069 \u200F'],
    ['newlines and tabs', 'line 1\nline 2\tend\r\n'],
  ])('accepts %s unchanged', (_name, text) => {
    expect(MessageText.parse(text)).toBe(text);
  });

  it.each([
    ['NUL', 'a\u0000b'],
    ['other C0 controls', 'bell\u0007'],
    ['C1 controls', 'x\u0085y'],
    ['a lone surrogate', 'broken \uD800 pair'],
    ['a bidi override', 'invoice\u202Egnp.exe'],
    ['a bidi embedding', '\u202Bembedded'],
    ['empty text', ''],
    ['only whitespace', ' \n\t '],
    ['too many code points', 'x'.repeat(4001)],
  ])('rejects %s', (_name, text) => {
    expect(MessageText.safeParse(text).success).toBe(false);
  });

  it('counts code points, not UTF-16 units: 4000 emoji fit', () => {
    expect(MessageText.safeParse('😀'.repeat(4000)).success).toBe(true);
  });
});

describe('sync positions', () => {
  it('round-trips and advances per shard, a new epoch always winning', () => {
    const a = encodeShardPosition({ shard: 0, epoch: 'e1', seq: 5 });
    expect(decodePosition(a)).toEqual([{ shard: 0, epoch: 'e1', seq: 5 }]);
    const later = advancePosition(a, encodeShardPosition({ shard: 0, epoch: 'e1', seq: 9 }));
    expect(decodePosition(later)).toEqual([{ shard: 0, epoch: 'e1', seq: 9 }]);
    const stale = advancePosition(later, encodeShardPosition({ shard: 0, epoch: 'e1', seq: 7 }));
    expect(decodePosition(stale)).toEqual([{ shard: 0, epoch: 'e1', seq: 9 }]);
    const other = advancePosition(later, encodeShardPosition({ shard: 1, epoch: 'x', seq: 2 }));
    expect(decodePosition(other)).toEqual([
      { shard: 0, epoch: 'e1', seq: 9 },
      { shard: 1, epoch: 'x', seq: 2 },
    ]);
    const recreated = advancePosition(later, encodeShardPosition({ shard: 0, epoch: 'e2', seq: 1 }));
    expect(decodePosition(recreated)).toEqual([{ shard: 0, epoch: 'e2', seq: 1 }]);
  });

  it('rejects tokens it could not have issued', () => {
    for (const t of ['', 'p1.', 'p1.!!!', 'p2.abc', 'p1.' + btoa('{"v":1,"p":[{"shard":-1,"epoch":"e","seq":1}]}')]) {
      expect(decodePosition(t)).toBeNull();
    }
  });
});

describe('close codes', () => {
  it('say whether to reconnect', () => {
    expect(shouldReconnect(CloseCode.slowReader)).toBe(true);
    expect(shouldReconnect(CloseCode.serverShutdown)).toBe(true);
    expect(shouldReconnect(CloseCode.unauthenticated)).toBe(false);
    expect(shouldReconnect(CloseCode.policyViolation)).toBe(false);
    expect(shouldReconnect(1006)).toBe(true);
  });
});

describe('stored events', () => {
  it('parse the current version and reject unknown types and fields', () => {
    const ok = { type: 'message.sent', v: 1, at: 1, actor: 'a', data: { conversationId: 'g_1', messageId: '1', clientMsgId: 'c', text: 'hi' } };
    expect(parseStoredEvent(ok)).toEqual(ok);
    expect(() => parseStoredEvent({ ...ok, type: 'message.exploded' })).toThrow();
    expect(() => parseStoredEvent({ ...ok, data: { ...ok.data, extra: 1 } })).toThrow();
  });
});

describe('subjects', () => {
  it('namespace every subject and parse entities back', () => {
    const s = subjectsFor('parley');
    expect(s.conv('g_1')).toBe('parley.ev.conv.g_1');
    expect(s.liveUser('bob')).toBe('parley.live.user.bob');
    expect(parseEntitySubject(s.conv('g_1'))).toEqual({ kind: 'conv', id: 'g_1' });
    expect(parseEntitySubject('parley.ev.other.x')).toBeNull();
    expect(() => subjectsFor('Bad.NS')).toThrow();
  });
});
