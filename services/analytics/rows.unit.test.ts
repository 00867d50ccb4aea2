import { describe, expect, it } from 'vitest';
import { formatAt, readStoredEvent, toEventRow } from './rows.js';
import { eventRowLine } from './sink.js';

const pos = { shard: 0, epoch: '1732370000000', seq: 42, subject: 'parley.ev.conv.g_1' };
const bytes = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

describe('analytics rows', () => {
  it('keeps ids, sizes and counts of a message and never its text', () => {
    const text = '你好 👋🏽 مرحبا';
    const event = readStoredEvent(
      bytes({
        type: 'message.sent',
        v: 1,
        at: 1732370000123,
        actor: 'ana',
        data: {
          conversationId: 'g_1',
          messageId: '7300000000000000001',
          clientMsgId: 'c1',
          text,
          mentions: ['bo'],
          attachments: [{ id: 'a'.repeat(64), name: 'x.png', size: 1000, contentType: 'image/png' }],
        },
      }),
    );
    const row = toEventRow(pos, event);
    expect(row).toMatchObject({
      seq: 42,
      entity_kind: 'conv',
      entity_id: 'g_1',
      type: 'message.sent',
      at: '1732370000.123',
      actor: 'ana',
      conversation_id: 'g_1',
      message_id: '7300000000000000001',
      text_chars: [...text].length,
      text_bytes: Buffer.byteLength(text),
      mention_count: 1,
      attachment_count: 1,
      attachment_bytes: 1000,
    });
    expect(eventRowLine(row)).not.toContain('你好');
    expect(eventRowLine(row)).not.toContain('x.png');
  });

  it('maps event types by field name, including types it does not know', () => {
    const reaction = toEventRow(
      { ...pos, subject: 'parley.ev.conv.g_1' },
      readStoredEvent(
        bytes({ type: 'reaction.added', v: 1, at: 5, actor: 'bo', data: { conversationId: 'g_1', target: { messageId: '9', seq: 7 }, emoji: '👍' } }),
      ),
    );
    expect(reaction).toMatchObject({ message_id: '9', ref_seq: 7, text_chars: 0 });
    expect(eventRowLine(reaction)).not.toContain('👍');
    const future = toEventRow(
      { ...pos, subject: 'parley.ev.user.bo' },
      readStoredEvent(bytes({ type: 'future.thing', v: 3, at: 5, actor: 'bo', data: { userId: 'cy' } })),
    );
    expect(future).toMatchObject({ entity_kind: 'user', entity_id: 'bo', type: 'future.thing', version: 3, target_user_id: 'cy', conversation_id: '' });
  });

  it('writes one TabSeparated line per row, escaping whatever a string holds', () => {
    const row = toEventRow(pos, readStoredEvent(bytes({ type: 'x', v: 1, at: 5, actor: 'a\tb\nc\\d\re', data: {} })));
    const line = eventRowLine(row);
    expect(line.split('\t')).toHaveLength(22);
    expect(line).toContain('a\\tb\\nc\\\\d\\re');
    expect(line).not.toMatch(/[\n\r]/);
  });

  it("names the shard a referenced sequence is of: the conversation's, even on a user's subject (5-token subjects too)", () => {
    const shardOf = (id: string) => (id === 'g_9' ? 1 : 0);
    const marker = toEventRow(
      { shard: 0, epoch: 'e0', seq: 5, subject: 'parley.ev.user.ana', shardOf },
      readStoredEvent(bytes({ type: 'read.marked', v: 1, at: 5, actor: 'ana', data: { conversationId: 'g_9', seq: 3 } })),
    );
    expect(marker).toMatchObject({ shard: 0, seq: 5, entity_kind: 'user', entity_id: 'ana', ref_seq: 3, ref_shard: 1 });
    const joined = toEventRow(
      { shard: 1, epoch: 'e1', seq: 5, subject: 'parley.ev.1.user.bo', shardOf },
      readStoredEvent(
        bytes({
          type: 'membership.joined',
          v: 1,
          at: 5,
          actor: 'ana',
          data: { conversationId: 'g_2', kind: 'group', role: 'member', cause: { conversationSeq: 4 } },
        }),
      ),
    );
    expect(joined).toMatchObject({ shard: 1, entity_kind: 'user', entity_id: 'bo', ref_seq: 4, ref_shard: 0 });
    const userTombstone = toEventRow(
      { shard: 1, epoch: 'e1', seq: 9, subject: 'parley.ev.1.user.bo', shardOf },
      readStoredEvent(bytes({ type: 'log.tombstoned', v: 1, at: 5, actor: 'op', data: { stream: 'parley_events_1', seq: 5, reason: 'x', by: 'op' } })),
    );
    expect(userTombstone).toMatchObject({ ref_seq: 5, ref_shard: 1 });
    expect(toEventRow(pos, readStoredEvent(bytes({ type: 'x', v: 1, at: 5, actor: 'a', data: {} })))).toMatchObject({ ref_seq: 0, ref_shard: 0 });
  });

  it('refuses bytes that are not an event', () => {
    expect(() => readStoredEvent(bytes({ hello: 1 }))).toThrow(/not an event/);
    expect(() => readStoredEvent(new TextEncoder().encode('{'))).toThrow();
  });

  it('formats times as seconds with milliseconds', () => {
    expect(formatAt(1732370000005)).toBe('1732370000.005');
    expect(formatAt(999)).toBe('0.999');
  });
});
