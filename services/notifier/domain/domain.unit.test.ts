import { describe, expect, it } from 'vitest';
import { coalesce, type Hit, type Window } from './coalesce.js';
import { previewOf, wantsNotification, type MessageFacts } from './recipients.js';
import { afterFailure, classifyStatus, retryDelayMs } from './retry.js';

const msg = (over: Partial<MessageFacts> = {}): MessageFacts => ({ seq: 10, at: 1_000, senderId: 'amy', mentions: [], kind: 'group', ...over });
const member = (userId: string, readSeq = 0, mutedUntil: number | null = null) => ({ userId, readSeq, mutedUntil });

describe('wantsNotification', () => {
  it('skips the sender, what was read, and muted members (judged at the message time)', () => {
    expect(wantsNotification(member('amy'), msg(), 'mentions').notify).toBe(false);
    expect(wantsNotification(member('bo', 10), msg(), 'mentions').notify).toBe(false);
    expect(wantsNotification(member('bo', 9), msg(), 'mentions').notify).toBe(true);
    expect(wantsNotification(member('bo', 0, 2_000), msg(), 'mentions').notify).toBe(false);
    expect(wantsNotification(member('bo', 0, 1_000), msg(), 'mentions').notify).toBe(true);
  });

  it('in channels, only mentions unless every message is wanted', () => {
    expect(wantsNotification(member('bo'), msg({ kind: 'channel' }), 'mentions').notify).toBe(false);
    expect(wantsNotification(member('bo'), msg({ kind: 'channel', mentions: ['bo'] }), 'mentions')).toEqual({ notify: true, mentioned: true });
    expect(wantsNotification(member('bo'), msg({ kind: 'channel' }), 'all').notify).toBe(true);
    expect(wantsNotification(member('bo'), msg({ kind: 'direct' }), 'mentions').notify).toBe(true);
  });

  it('previews are cut by code points, never inside a surrogate pair', () => {
    expect(previewOf('short')).toBe('short');
    const long = '😀'.repeat(200);
    const p = previewOf(long, 10);
    expect([...p]).toHaveLength(10);
    expect(p.endsWith('…')).toBe(true);
    expect(p.isWellFormed()).toBe(true);
  });
});

const hit = (seq: number, at: number, over: Partial<Hit> = {}): Hit => ({
  userId: 'bo',
  conversationId: 'g_1',
  seq,
  at,
  senderId: 'amy',
  preview: `m${seq}`,
  mentioned: false,
  ...over,
});

describe('coalesce', () => {
  it('puts messages within the window (from its first message) into one notification', () => {
    const { created, updated } = coalesce([], [hit(1, 0), hit(2, 4_000), hit(3, 9_999), hit(4, 10_000)], 10_000);
    expect(updated).toEqual([]);
    expect(created.map((w) => [w.firstSeq, w.lastSeq, w.count, w.preview, w.dueAt])).toEqual([
      [1, 3, 3, 'm3', 10_000],
      [4, 4, 1, 'm4', 20_000],
    ]);
  });

  it('keeps members and conversations apart, and remembers a mention anywhere in the window', () => {
    const { created } = coalesce([], [hit(1, 0), hit(2, 1, { userId: 'cy' }), hit(3, 2, { conversationId: 'g_2' }), hit(4, 3, { mentioned: true })], 1_000);
    expect(created).toHaveLength(3);
    expect(created.find((w) => w.userId === 'bo' && w.conversationId === 'g_1')).toMatchObject({ count: 2, mentioned: true });
  });

  it('extends an open row, and a replayed message changes nothing', () => {
    const open: Window = {
      id: '7',
      userId: 'bo',
      conversationId: 'g_1',
      firstSeq: 1,
      lastSeq: 2,
      count: 2,
      mentioned: false,
      senderId: 'amy',
      preview: 'm2',
      firstAt: 0,
      lastAt: 5,
      dueAt: 1_000,
    };
    expect(coalesce([open], [hit(2, 5)], 1_000)).toEqual({ updated: [], created: [] });
    const { updated, created } = coalesce([open], [hit(2, 5), hit(3, 900, { senderId: 'cy' })], 1_000);
    expect(created).toEqual([]);
    expect(updated).toEqual([{ ...open, lastSeq: 3, count: 3, senderId: 'cy', preview: 'm3', lastAt: 900 }]);
    expect(open.count).toBe(2);
  });

  it('with a zero window every message is its own notification', () => {
    expect(coalesce([], [hit(1, 0), hit(2, 0)], 0).created).toHaveLength(2);
  });

  it('a clear between two messages of one batch closes the window, as it would between two batches', () => {
    const readAt = (atSeq: number, uptoSeq: number) => ({ userId: 'bo', conversationId: 'g_1', atSeq, uptoSeq });
    // Read up to 1 at seq 2: the window of message 1 is cleared, message 3 opens another.
    const batch = coalesce([], [hit(1, 0), hit(3, 10)], 1_000, [readAt(2, 1)]);
    expect(batch.created.map((w) => [w.firstSeq, w.lastSeq])).toEqual([
      [1, 1],
      [3, 3],
    ]);
    // Read only up to 0 (before message 1): nothing is cleared, and message 3 joins the window.
    expect(coalesce([], [hit(1, 0), hit(3, 10)], 1_000, [readAt(2, 0)]).created.map((w) => [w.firstSeq, w.lastSeq])).toEqual([[1, 3]]);
    // A clear after the last message, or of someone else, changes nothing here.
    expect(coalesce([], [hit(1, 0), hit(3, 10)], 1_000, [readAt(4, 3), { ...readAt(2, 1), userId: 'cy' }]).created).toHaveLength(1);
    // An open row from an earlier batch is not extended past a clear that reaches it.
    const open: Window = {
      id: '7',
      userId: 'bo',
      conversationId: 'g_1',
      firstSeq: 1,
      lastSeq: 1,
      count: 1,
      mentioned: false,
      senderId: 'amy',
      preview: 'm1',
      firstAt: 0,
      lastAt: 0,
      dueAt: 1_000,
    };
    const later = coalesce([open], [hit(3, 10)], 1_000, [readAt(2, 1)]);
    expect(later.updated).toEqual([]);
    expect(later.created.map((w) => [w.firstSeq, w.lastSeq])).toEqual([[3, 3]]);
  });
});

describe('retries', () => {
  it('back off 1, 2, 4, 8 s and stay capped', () => {
    expect([1, 2, 3, 4, 5, 6].map((a) => retryDelayMs(a, 1000, 8000))).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
  });

  it('retry what can succeed later, fail what cannot, and drop expired push subscriptions', () => {
    expect(classifyStatus(201, false)).toEqual({ outcome: 'sent' });
    for (const s of [408, 425, 429, 500, 503]) expect(classifyStatus(s, false).outcome).toBe('retry');
    for (const s of [301, 400, 401, 403, 413]) expect(classifyStatus(s, true).outcome).toBe('failed');
    expect(classifyStatus(410, true).outcome).toBe('gone');
    expect(classifyStatus(410, false).outcome).toBe('failed');
  });

  it('give up after the last attempt', () => {
    const policy = { maxAttempts: 3, retryBaseMs: 1000, retryMaxDelayMs: 8000 };
    const retry = { outcome: 'retry', error: 'HTTP 500' } as const;
    expect(afterFailure(retry, 1, policy)).toEqual({ retryInMs: 1000 });
    expect(afterFailure(retry, 2, policy)).toEqual({ retryInMs: 2000 });
    expect(afterFailure(retry, 3, policy)).toEqual({ final: true });
    expect(afterFailure({ outcome: 'failed', error: 'HTTP 400' }, 1, policy)).toEqual({ final: true });
  });
});
