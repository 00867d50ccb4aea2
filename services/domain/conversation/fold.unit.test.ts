import { describe, expect, it } from 'vitest';
import type { ParleyEvent } from '../../../contracts/index.js';
import { foldAgain, foldEntry, type FoldEntry, type FoldResult } from './fold.js';
import { emptyConversation, type ConversationState } from './state.js';

const STREAM = 'parley_events_0';
const ID = 'g_1';
const base = { v: 1 as const, at: 1_700_000_000_000, actor: 'alice' };

const created: ParleyEvent = {
  type: 'conversation.created',
  ...base,
  data: {
    conversationId: ID,
    kind: 'group',
    title: 'T',
    members: [
      { userId: 'alice', role: 'owner' },
      { userId: 'bob', role: 'member' },
    ],
  },
};
const sent = (messageId: string, clientMsgId: string): ParleyEvent => ({
  type: 'message.sent',
  ...base,
  data: { conversationId: ID, messageId, clientMsgId, text: 'hi' },
});
const removedBob: ParleyEvent = { type: 'member.removed', ...base, data: { conversationId: ID, userId: 'bob', self: false } };
const tombstone = (seq: number): ParleyEvent => ({
  type: 'log.tombstoned',
  ...base,
  actor: 'operator',
  data: { stream: STREAM, seq, reason: 'test', by: 'operator', conversationId: ID },
});

/** Folds a subject's positions the way the write side does: again from the start when a tombstone asks. */
function foldAll(entries: FoldEntry[]): { state: ConversationState; results: FoldResult[]; refolds: number } {
  let state = emptyConversation(ID);
  let results: FoldResult[] = [];
  let refolds = 0;
  for (let i = 0; i < entries.length; i++) {
    const r = foldEntry(state, STREAM, entries[i]!);
    results.push(r);
    if (r.kind === 'refold') {
      refolds++;
      state = foldAgain(state);
      results = [];
      i = -1;
    }
  }
  return { state, results, refolds };
}

describe('folding a conversation subject', () => {
  it.each([
    ['garbage (null event)', { seq: 2, event: null, reason: 'not JSON' }],
    ['a user event on the conversation subject', { seq: 2, event: { type: 'read.marked', ...base, data: { conversationId: ID, seq: 1 } } as ParleyEvent }],
    ['another conversation’s event', { seq: 2, event: { ...removedBob, data: { conversationId: 'g_other', userId: 'alice', self: true } } as ParleyEvent }],
  ])('skips %s, still chaining the version on it', (_name, entry) => {
    const { state, results } = foldAll([{ seq: 1, event: created }, entry as FoldEntry, { seq: 3, event: sent('10', 'm1') }]);
    expect(results.map((r) => r.kind)).toEqual(['applied', 'skipped', 'applied']);
    expect(state.version).toBe(3);
    expect(state.skipped).toEqual(new Set([2]));
    expect([...state.members.keys()]).toEqual(['alice', 'bob']);
    expect(state.messages.has('10')).toBe(true);
  });

  it('chains the version on an unreadable last position (the next append is conditional on it)', () => {
    const { state } = foldAll([
      { seq: 1, event: created },
      { seq: 7, event: null, reason: 'x' },
    ]);
    expect(state.version).toBe(7);
    expect(state.exists).toBe(true);
  });

  it('folds a decodable but meaningless event as a no-op (an edit or reaction of a message that does not exist)', () => {
    const edit: ParleyEvent = { type: 'message.edited', ...base, data: { conversationId: ID, target: { messageId: '999', seq: 99 }, text: 'x' } };
    const react: ParleyEvent = { type: 'reaction.removed', ...base, data: { conversationId: ID, target: { messageId: '999', seq: 99 }, emoji: '👍' } };
    const { state, results } = foldAll([
      { seq: 1, event: created },
      { seq: 2, event: edit },
      { seq: 3, event: react },
    ]);
    expect(results.every((r) => r.kind === 'applied')).toBe(true);
    expect(state.messages.size).toBe(0);
    expect(state.version).toBe(3);
  });

  it('a tombstone of an event already folded in folds the subject again without it', () => {
    const { state, refolds } = foldAll([
      { seq: 1, event: created },
      { seq: 2, event: removedBob },
      { seq: 3, event: sent('10', 'm1') },
      { seq: 4, event: tombstone(2) },
    ]);
    expect(refolds).toBe(1);
    expect(state.members.has('bob')).toBe(true);
    expect(state.tombstoned).toEqual(new Set([2]));
    expect(state.version).toBe(4);
    expect(state.messages.has('10')).toBe(true);
  });

  it('a tombstone of an event the fold skipped needs no second fold', () => {
    const { state, refolds } = foldAll([
      { seq: 1, event: created },
      { seq: 2, event: null, reason: 'x' },
      { seq: 3, event: tombstone(2) },
    ]);
    expect(refolds).toBe(0);
    expect(state.version).toBe(3);
  });

  it('ignores tombstones of another stream or naming a later sequence', () => {
    const other: ParleyEvent = { ...tombstone(2), data: { stream: 'other_events_0', seq: 2, reason: 'r', by: 'operator' } } as ParleyEvent;
    const { state, refolds } = foldAll([
      { seq: 1, event: created },
      { seq: 2, event: removedBob },
      { seq: 3, event: other },
      { seq: 4, event: tombstone(9) },
    ]);
    expect(refolds).toBe(0);
    expect(state.members.has('bob')).toBe(false);
  });
});
