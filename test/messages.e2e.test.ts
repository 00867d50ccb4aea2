import { beforeAll, describe, expect, it } from 'vitest';
import { parseSnowflake } from '../services/ids/snowflake.js';
import { usePlatform } from './support/fixture.js';
import { api, TestClient } from './support/ws-client.js';

// A short recall window keeps the "too late" case fast.
const fx = usePlatform({ env: { RECALL_WINDOW_SECONDS: '2', MAX_REACTIONS_PER_MESSAGE: '3' } });
const connect = (userId: string) => fx.connect(userId);
let group: string;
let own: TestClient, adm: TestClient, mem: TestClient, mem2: TestClient;

beforeAll(async () => {
  [own, adm, mem, mem2] = (await Promise.all(['own', 'adm', 'mem', 'mem2'].map(connect))) as [TestClient, TestClient, TestClient, TestClient];
  const g = await own.ok({ t: 'create', kind: 'group', title: 'Messages', members: ['adm', 'mem', 'mem2'] });
  group = g.conversationId;
  await own.ok({ t: 'set_role', conversationId: group, userId: 'adm', role: 'admin' });
  await Promise.all([adm, mem, mem2].map((c) => c.joined(group)));
});
async function history(userId: string, after: number, conversationId = group) {
  const r = await api(fx.p.http, 'GET', `/v1/conversations/${conversationId}/messages?after=${after}&limit=100`, await fx.p.token(userId));
  expect(r.status).toBe(200);
  return r.body.messages as any[];
}

describe('messages', () => {
  it('get time-ordered 64-bit ids carrying the node id', async () => {
    const a = await mem.send(group, 'first');
    const b = await mem.send(group, 'second');
    expect(BigInt(b.result.messageId) > BigInt(a.result.messageId)).toBe(true);
    const parts = parseSnowflake(a.result.messageId);
    expect(parts.nodeId).toBe(1);
    expect(Math.abs(parts.timeMs - a.result.at)).toBeLessThan(1000);
  });

  it('replies carry a quoted preview, and @mentions are parsed, stored and counted', async () => {
    const original = await mem.send(group, '个人开发可以，看你怎么讲了。比如说你参加solo hackathon，赢了，就很牛逼了');
    const reply = await adm.ok({
      t: 'send',
      conversationId: group,
      clientMsgId: 'r1',
      text: 'agree @mem, and @mem2 should try too (not @stranger)',
      replyTo: original.result.messageId,
    });
    const live = await mem2.event('message.sent', (d) => d.messageId === reply.messageId);
    expect(live.event.data.replyTo).toEqual({ messageId: original.result.messageId, seq: original.result.seq });
    expect(live.event.data.mentions).toEqual(['mem', 'mem2']);
    const [view] = (await history('mem2', reply.seq)).filter((m) => m.messageId === reply.messageId);
    expect(view.replyTo).toMatchObject({ messageId: original.result.messageId, senderId: 'mem', preview: expect.stringContaining('solo hackathon') });
    const unread = await api(fx.p.http, 'GET', `/v1/unread?after=${reply.seq}`, await fx.p.token('mem2'));
    expect(unread.body.conversations.find((c: any) => c.conversationId === group)).toMatchObject({ mentions: 1 });
    expect(await adm.request({ t: 'send', conversationId: group, clientMsgId: 'r2', text: 'x', replyTo: '123456' })).toMatchObject({ code: 'not_found' });
  });

  it('edits by the sender only, keeping every version', async () => {
    const m = await mem.send(group, 'draft one');
    expect(await adm.request({ t: 'edit', conversationId: group, messageId: m.result.messageId, text: 'hijack' })).toMatchObject({ code: 'forbidden' });
    await mem.ok({ t: 'edit', conversationId: group, messageId: m.result.messageId, text: 'draft two' });
    const last = await mem.ok({ t: 'edit', conversationId: group, messageId: m.result.messageId, text: 'final 最终版' });
    await own.event('message.edited', (d) => d.target.messageId === m.result.messageId && d.text === 'final 最终版');
    const [view] = (await history('own', last.seq)).filter((x) => x.messageId === m.result.messageId);
    expect(view).toMatchObject({ text: 'final 最终版', editCount: 2 });
    const versions = await api(fx.p.http, 'GET', `/v1/conversations/${group}/messages/${m.result.seq}/versions`, await fx.p.token('own'));
    expect(versions.body.versions.map((v: any) => v.text)).toEqual(['draft one', 'draft two', 'final 最终版']);
  });

  it('recall by the sender within the window: a tombstone on every device, content gone from every read model', async () => {
    const secondDevice = await connect('mem');
    const m = await mem.send(group, 'oops, wrong chat: my password is hunter2');
    await mem.ok({ t: 'react', conversationId: group, messageId: m.result.messageId, emoji: '😱' });
    const r = await mem.ok({ t: 'recall', conversationId: group, messageId: m.result.messageId });
    for (const device of [mem, secondDevice, own, adm, mem2]) await device.event('message.recalled', (d) => d.target.messageId === m.result.messageId);
    const [view] = (await history('own', r.seq)).filter((x) => x.messageId === m.result.messageId);
    expect(view).toMatchObject({ status: 'recalled', text: '', reactions: [], mentions: [] });
    const search = await api(fx.p.http, 'GET', `/v1/search?q=hunter2&after=${r.seq}`, await fx.p.token('own'));
    expect(search.body.messages).toEqual([]);
    // Recalling twice changes nothing more.
    const again = await mem.ok({ t: 'recall', conversationId: group, messageId: m.result.messageId });
    expect(again.seq).toBe(r.seq);
  });

  it('refuses recall after the window and by anyone but the sender', async () => {
    const m = await mem.send(group, 'too late to take back');
    expect(await own.request({ t: 'recall', conversationId: group, messageId: m.result.messageId })).toMatchObject({ code: 'forbidden' });
    await new Promise((r) => setTimeout(r, 2200));
    expect(await mem.request({ t: 'recall', conversationId: group, messageId: m.result.messageId })).toMatchObject({ t: 'error', code: 'window_expired' });
  });

  it('lets admins and the owner delete any message at any time, members none', async () => {
    const m = await mem2.send(group, 'spam spam spam');
    expect(await mem.request({ t: 'delete', conversationId: group, messageId: m.result.messageId })).toMatchObject({ code: 'forbidden' });
    const d = await adm.ok({ t: 'delete', conversationId: group, messageId: m.result.messageId });
    await mem2.event('message.deleted', (x) => x.target.messageId === m.result.messageId);
    const [view] = (await history('mem', d.seq)).filter((x) => x.messageId === m.result.messageId);
    expect(view).toMatchObject({ status: 'deleted', text: '' });
  });

  it('counts reactions per emoji with who reacted, idempotently, within the distinct-emoji limit', async () => {
    const m = await own.send(group, 'react to me');
    const id = m.result.messageId;
    for (const [c, e] of [
      [mem, '👍'],
      [adm, '👍'],
      [mem2, '👍🏽'],
      [own, '👨‍👩‍👧'],
    ] as const)
      await c.ok({ t: 'react', conversationId: group, messageId: id, emoji: e });
    await mem.ok({ t: 'react', conversationId: group, messageId: id, emoji: '👍' }); // again: no change
    expect(await mem.request({ t: 'react', conversationId: group, messageId: id, emoji: '🎉' })).toMatchObject({ code: 'limit_exceeded' });
    expect(await mem.request({ t: 'react', conversationId: group, messageId: id, emoji: 'lol' })).toMatchObject({ code: 'invalid_frame' });
    const last = await adm.ok({ t: 'unreact', conversationId: group, messageId: id, emoji: '👍' });
    await mem.event('reaction.removed', (d) => d.target.messageId === id);
    const [view] = (await history('mem', last.seq)).filter((x) => x.messageId === id);
    expect(view.reactions).toEqual([
      { emoji: '👍', count: 1, users: ['mem'], mine: true },
      { emoji: '👍🏽', count: 1, users: ['mem2'], mine: false },
      { emoji: '👨‍👩‍👧', count: 1, users: ['own'], mine: false },
    ]);
  });
});

describe('attachments', () => {
  const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('parley test image '.repeat(100))]);
  const upload = async (userId: string, body: Buffer, type: string, name = 'pic.png') =>
    fetch(`${fx.p.http}/v1/attachments?name=${encodeURIComponent(name)}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await fx.p.token(userId)}`, 'content-type': type },
      body,
    });
  const download = async (userId: string, id: string) =>
    fetch(`${fx.p.http}/v1/attachments/${id}`, { headers: { authorization: `Bearer ${await fx.p.token(userId)}` } });

  it('uploads once per content hash, references from a message, and serves members only', async () => {
    const first = await upload('mem', png, 'image/png', '截图 1.png');
    expect(first.status).toBe(201);
    const a = (await first.json()) as { id: string };
    expect(a).toMatchObject({ size: png.byteLength, contentType: 'image/png', name: '截图 1.png', deduplicated: false });
    expect(a.id).toMatch(/^[0-9a-f]{64}$/);
    const again = await (await upload('own', png, 'image/png', 'copy.png')).json();
    expect(again).toMatchObject({ id: a.id, deduplicated: true });

    // Before it is shared, only the uploader may fetch it.
    expect((await download('outsider', a.id)).status).toBe(404);
    const sent = await mem.ok({ t: 'send', conversationId: group, clientMsgId: 'att-1', text: 'see attached', attachments: [a.id] });
    const live = await own.event('message.sent', (d) => d.messageId === sent.messageId);
    expect(live.event.data.attachments).toEqual([{ id: a.id, name: '截图 1.png', size: png.byteLength, contentType: 'image/png' }]);
    await history('own', sent.seq);
    const got = await download('mem2', a.id);
    expect(got.status).toBe(200);
    expect(got.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await got.arrayBuffer()).equals(png)).toBe(true);
    expect((await download('outsider', a.id)).status).toBe(404);
    expect(await mem.request({ t: 'send', conversationId: group, clientMsgId: 'att-2', text: 'ghost', attachments: ['0'.repeat(64)] })).toMatchObject({
      code: 'not_found',
    });
  });

  it('enforces type and size limits', async () => {
    const exe = await upload('mem', Buffer.from('MZ...'), 'application/x-msdownload', 'evil.exe');
    expect(exe.status).toBe(400);
    expect(((await exe.json()) as { code: string }).code).toBe('invalid_request');
    const huge = await upload('mem', Buffer.alloc(11 << 20, 1), 'application/octet-stream', 'big.bin');
    expect(huge.status).toBe(413);
  });
});

it('logged no errors', () => {
  expect(fx.p.errorLogs).toEqual([]);
});
