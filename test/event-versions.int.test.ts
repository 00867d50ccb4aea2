import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseStoredEvent, upcasters } from '../contracts/index.js';
import { projectionByName } from '../services/projector/projections.js';
import { rebuild } from '../services/projector/rebuild.js';
import { appendAll, appendRaw, created, sent, waitUntil } from './support/events.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';

/**
 * Old event versions stay readable: a log mixing a (hypothetical) version 0
 * of message.sent with the current version 1 projects into the same read
 * model as a log written entirely in version 1, live and on rebuild.
 *
 * Version 0 existed only in this test: its text was `body`, it had no
 * client message id, and `at` was in seconds.
 */
function upcastV0(e: Record<string, unknown>): Record<string, unknown> {
  const d = e.data as { conversationId: string; messageId: string; body: string };
  return {
    ...e,
    v: 1,
    at: (e.at as number) * 1000,
    data: { conversationId: d.conversationId, messageId: d.messageId, clientMsgId: `v0-${d.messageId}`, text: d.body },
  };
}

let p: TestPlatform;

beforeAll(async () => {
  upcasters['message.sent@0'] = upcastV0;
  p = await startTestPlatform();
});

afterAll(async () => {
  delete upcasters['message.sent@0'];
  await p?.stop();
});

describe('versioned events', () => {
  it('upcasts on read: a parsed v0 event is the v1 event it stands for', () => {
    const v0 = { type: 'message.sent', v: 0, at: 1_700_000_000, actor: 'ann', data: { conversationId: 'g_x', messageId: '5', body: 'hi' } };
    expect(parseStoredEvent(v0)).toEqual({
      type: 'message.sent',
      v: 1,
      at: 1_700_000_000_000,
      actor: 'ann',
      data: { conversationId: 'g_x', messageId: '5', clientMsgId: 'v0-5', text: 'hi' },
    });
  });

  it('projects a log mixing v0 and v1 into the same read model as an all-v1 log, live and when rebuilt', async () => {
    const rt = p.platform.runtime;
    const at = 1_700_000_000;
    const lines = ['老版本的消息', 'a v1 message', 'another old one 👴', 'and a new one ✨'];
    await appendAll(rt, [created('g_mixed', ['ann', 'ben'], at * 1000), created('g_v1only', ['ann', 'ben'], at * 1000)]);
    let last = 0;
    for (const [i, text] of lines.entries()) {
      const actor = i % 2 ? 'ben' : 'ann';
      const messageId = String(900 + i);
      const clientMsgId = `v0-${messageId}`;
      const v1 = {
        type: 'message.sent' as const,
        v: 1 as const,
        at: (at + i) * 1000,
        actor,
        data: { conversationId: 'g_v1only', messageId, clientMsgId, text },
      };
      if (i % 2 === 0) {
        await appendRaw(rt, rt.subjects.conv('g_mixed'), {
          type: 'message.sent',
          v: 0,
          at: at + i,
          actor,
          data: { conversationId: 'g_mixed', messageId, body: text },
        });
      } else {
        await appendAll(rt, [{ ...v1, data: { ...v1.data, conversationId: 'g_mixed' } }]);
      }
      last = (await appendAll(rt, [v1]))[0]!;
    }
    await waitUntil(
      async () =>
        (await rt.db.selectFrom('projector_checkpoints').select('seq').where('projector', '=', 'read-model').executeTakeFirst())?.seq === String(last),
    );

    const rows = (id: string) =>
      rt.db
        .selectFrom('messages')
        .select(['message_id', 'sender_id', 'client_msg_id', 'text', 'created_at', 'ordinal'])
        .where('conversation_id', '=', id)
        .orderBy('seq')
        .execute();
    const mixed = await rows('g_mixed');
    expect(mixed.map((r) => r.text)).toEqual(lines);
    expect(mixed).toEqual(await rows('g_v1only'));
    expect(await rt.db.selectFrom('parked_events').selectAll().execute()).toEqual([]);

    const report = await rebuild(rt, projectionByName(rt.subjects, 'read-model'), { maxDeliveries: 3 });
    expect(report.comparison?.every((c) => c.equal)).toBe(true);
    expect((await rows('g_mixed')).map((r) => r.text)).toEqual(lines);
  });
});

describe('nothing unexpected was logged', () => {
  it('has no error log lines', () => {
    expect(p.errorLogs).toEqual([]);
  });
});
