import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { usePlatform } from './support/fixture.js';
import { api, TestClient } from './support/ws-client.js';

const fx = usePlatform({ env: { RATE_SENDS_PER_SECOND: '5', PRESENCE_TTL_SECONDS: '5' } });
const connect = (userId: string) => fx.connect(userId);

/** Sends, honouring rate_limited answers by waiting retryAfterMs (this file runs with a low send limit). */
async function paced(c: TestClient, frame: Record<string, unknown>): Promise<Record<string, any>> {
  for (;;) {
    const reply = await c.request(frame);
    if (reply.t === 'ack') return reply.result;
    if (reply.code !== 'rate_limited') throw new Error(JSON.stringify(reply));
    await new Promise((r) => setTimeout(r, reply.retryAfterMs));
  }
}
const get = async (userId: string, url: string) => (await api(fx.p.http, 'GET', url, await fx.p.token(userId))).body;

describe('read markers, receipts and unread counts', () => {
  it('are the same on every device, live, and "seen by" follows the markers', async () => {
    const [amy, bo, cy] = (await Promise.all(['amy', 'bo', 'cy'].map(connect))) as TestClient[];
    const boPhone = await connect('bo');
    const g = await amy!.ok({ t: 'create', kind: 'group', title: 'receipts', members: ['bo', 'cy'] });
    await Promise.all([bo!, cy!, boPhone].map((c) => c.joined(g.conversationId)));
    const sent: any[] = [];
    for (const t of ['one', 'two @bo', 'three']) sent.push((await amy!.send(g.conversationId, t)).result);
    const lastSeq = sent[2].seq;

    let unread = await get('bo', `/v1/unread?after=${lastSeq}`);
    expect(unread).toMatchObject({ total: 3, mentions: 1 });
    // The sender has nothing unread in their own conversation.
    expect((await get('amy', `/v1/unread?after=${lastSeq}`)).total).toBe(0);

    await cy!.ok({ t: 'mark_delivered', conversationId: g.conversationId, seq: lastSeq });
    const read = await bo!.ok({ t: 'mark_read', conversationId: g.conversationId, seq: sent[1].seq });
    // Bo's phone learns about the marker on Bo's own subject; Amy sees the receipt live.
    await boPhone.event('read.marked', (d) => d.conversationId === g.conversationId && d.seq === sent[1].seq);
    const receipt = await amy!.next((f) => f.t === 'receipt' && f.userId === 'bo' && f.kind === 'read');
    expect(receipt).toMatchObject({ conversationId: g.conversationId, seq: sent[1].seq });

    unread = await get('bo', `/v1/unread?after=${read.seq}`);
    expect(unread).toMatchObject({ total: 1, mentions: 0 });
    const seen = await get('amy', `/v1/conversations/${g.conversationId}/messages/${sent[1].seq}/receipts`);
    expect(seen).toEqual({ seq: sent[1].seq, seenBy: ['bo'], deliveredTo: ['bo', 'cy'] });
    // A marker beyond the conversation's end is clamped, never ahead of what exists.
    const far = await bo!.ok({ t: 'mark_read', conversationId: g.conversationId, seq: lastSeq + 1000 });
    expect((await get('bo', `/v1/unread?after=${far.seq}`)).total).toBe(0);
    expect(await cy!.request({ t: 'mark_read', conversationId: 'g_999', seq: 1 })).toMatchObject({ code: 'not_member' });
  });
});

describe('typing', () => {
  it('is ephemeral, throttled, expires by itself, and only for members', async () => {
    const [dee, eli, fay] = (await Promise.all(['dee', 'eli', 'fay'].map(connect))) as TestClient[];
    const d = await dee!.ok({ t: 'create', kind: 'direct', peer: 'eli' });
    await eli!.joined(d.conversationId);
    const before = await fx.p.platform.runtime.store.lastSubjectSeq(fx.p.platform.runtime.subjects.conv(d.conversationId));
    dee!.sendRaw(JSON.stringify({ t: 'typing', id: 't1', conversationId: d.conversationId }));
    dee!.sendRaw(JSON.stringify({ t: 'typing', id: 't2', conversationId: d.conversationId }));
    const typing = await eli!.next((f) => f.t === 'typing');
    expect(typing).toMatchObject({ conversationId: d.conversationId, userId: 'dee' });
    expect(typing.expiresAt - Date.now()).toBeGreaterThan(3000);
    expect((await eli!.request({ t: 'ping' })).t).toBe('pong');
    expect(eli!.frames.filter((f) => f.t === 'typing')).toHaveLength(1);
    expect(await fx.p.platform.runtime.store.lastSubjectSeq(fx.p.platform.runtime.subjects.conv(d.conversationId))).toBe(before);
    expect(await fay!.request({ t: 'typing', conversationId: d.conversationId })).toMatchObject({ code: 'not_member' });
  });
});

describe('presence', () => {
  it('shows online / offline with last seen, only to users who share a conversation', async () => {
    const gus = await connect('gus');
    const d = await gus.ok({ t: 'create', kind: 'direct', peer: 'hal' });
    await api(fx.p.http, 'GET', `/v1/conversations?after=${d.seq}`, await fx.p.token('hal'));
    const hal = await connect('hal');
    let view = await get('gus', '/v1/presence?userIds=hal,ivan');
    expect(view.presence).toEqual([{ userId: 'hal', status: 'online', lastSeenAt: expect.any(Number) }]);
    await hal.close();
    await new Promise((r) => setTimeout(r, 100));
    view = await get('gus', '/v1/presence?userIds=hal');
    expect(view.presence[0]).toMatchObject({ userId: 'hal', status: 'offline' });
    expect(Date.now() - view.presence[0].lastSeenAt).toBeLessThan(5000);
    expect((await get('ivan', '/v1/presence?userIds=hal')).presence).toEqual([]);
  });
});

describe('presence heartbeat', () => {
  it('keeps every connected user online past the TTL: each key is rewritten, slice by slice', async () => {
    const users = Array.from({ length: 9 }, (_, i) => `hb${i}`);
    const owner = await connect('hbo');
    const g = await owner.ok({ t: 'create', kind: 'group', title: 'heartbeat', members: users });
    await api(fx.p.http, 'GET', `/v1/conversations?after=${g.seq}`, await fx.p.token('hbo'));
    const clients = await Promise.all(users.map(connect));
    // Past the TTL (5 s in this file), a key written only at connect has expired.
    await new Promise((r) => setTimeout(r, 7500));
    const view = await get('hbo', `/v1/presence?userIds=${users.join(',')}`);
    expect(view.presence.map((p: { userId: string; status: string }) => [p.userId, p.status])).toEqual(users.map((u) => [u, 'online']));
    await Promise.all([owner, ...clients].map((c) => c.close()));
  });
});

describe('mute, pin and archive', () => {
  it('are per user, on every device, and shape the conversation list and unread totals', async () => {
    const jo = await connect('jo');
    const a = await jo.ok({ t: 'create', kind: 'direct', peer: 'kai' });
    const b = await jo.ok({ t: 'create', kind: 'direct', peer: 'lu' });
    const kai = await connect('kai');
    await kai.send(a.conversationId, 'ping from kai');
    const lu = await connect('lu');
    const last = (await lu.send(b.conversationId, 'ping from lu')).result.seq;
    await jo.ok({ t: 'set_preferences', conversationId: a.conversationId, mutedUntil: Date.now() + 3_600_000, pinned: true });
    const arch = await jo.ok({ t: 'set_preferences', conversationId: b.conversationId, archived: true });
    const list = await get('jo', `/v1/conversations?after=${Math.max(arch.seq, last)}`);
    expect(list.conversations[0]).toMatchObject({ conversationId: a.conversationId, pinned: true, mutedUntil: expect.any(Number), unread: 1 });
    expect(list.conversations.some((c: any) => c.conversationId === b.conversationId)).toBe(false);
    const archived = await get('jo', '/v1/conversations?archived=true');
    expect(archived.conversations.map((c: any) => c.conversationId)).toEqual([b.conversationId]);
    const unread = await get('jo', '/v1/unread');
    expect(unread.total).toBe(1); // lu's message counts; kai's conversation is muted
    expect(unread.conversations.find((c: any) => c.conversationId === a.conversationId)).toMatchObject({ muted: true, unread: 1 });
    expect(await jo.request({ t: 'set_preferences', conversationId: a.conversationId })).toMatchObject({ code: 'invalid_request' });
  });
});

describe('blocking', () => {
  it('stops 1:1 messages both ways, and hides the blocked user in groups for the blocker only', async () => {
    const [max, ned, oz] = (await Promise.all(['max', 'ned', 'oz'].map(connect))) as TestClient[];
    const d = await max!.ok({ t: 'create', kind: 'direct', peer: 'ned' });
    const g = await max!.ok({ t: 'create', kind: 'group', title: 'trio', members: ['ned', 'oz'] });
    await ned!.joined(g.conversationId);
    await max!.ok({ t: 'block', userId: 'ned' });
    expect(await ned!.send(d.conversationId, 'hello?')).toMatchObject({ code: 'blocked' });
    expect(await max!.send(d.conversationId, 'hello?')).toMatchObject({ code: 'blocked' });
    const inGroup = await ned!.send(g.conversationId, 'group message from ned');
    await oz!.message(g.conversationId, 'group message from ned');
    expect((await get('max', `/v1/conversations/${g.conversationId}/messages?after=${inGroup.result.seq}`)).messages).toEqual([]);
    expect((await get('oz', `/v1/conversations/${g.conversationId}/messages`)).messages.map((m: any) => m.text)).toEqual(['group message from ned']);
    await max!.ok({ t: 'unblock', userId: 'ned' });
    expect((await ned!.send(d.conversationId, 'friends again')).t).toBe('ack');
    expect(await max!.request({ t: 'block', userId: 'max' })).toMatchObject({ code: 'invalid_request' });
  });
});

describe('search', () => {
  it('finds Chinese and English messages the user may read, and nothing else', async () => {
    // A real multi-user chat log excerpt (Chinese, English, emoji, timestamps), shipped with the tests.
    const seed = fs.readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/chat-log-excerpt.txt'), 'utf8');
    const lines = seed
      .split(/\s{2,}/)
      .map((l) => l.trim())
      .filter((l) => l.length > 3 && l.length < 300)
      .slice(0, 40);
    const [pam, quin] = (await Promise.all(['pam', 'quin'].map(connect))) as TestClient[];
    const g = await pam!.ok({ t: 'create', kind: 'group', title: 'seed chat', members: ['quin'] });
    await quin!.joined(g.conversationId);
    let last = 0;
    for (const [i, line] of lines.entries())
      last = (await paced(i % 2 ? quin! : pam!, { t: 'send', conversationId: g.conversationId, clientMsgId: `s${i}`, text: line })).seq;
    const secret = await connect('rex');
    const other = await secret.ok({ t: 'create', kind: 'direct', peer: 'sam' });
    const hidden = (await secret.ok({ t: 'send', conversationId: other.conversationId, clientMsgId: 'h', text: 'recruiter 内推 secret' })).seq;
    const after = Math.max(last, hidden);

    const search = async (user: string, q: string) =>
      (await get(user, `/v1/search?q=${encodeURIComponent(q)}&after=${after}`)).messages.map((m: any) => m.text) as string[];
    const cjk = await search('pam', '内推');
    expect(cjk.length).toBeGreaterThan(0);
    expect(cjk.every((t) => t.includes('内推'))).toBe(true);
    expect(cjk).not.toContain('recruiter 内推 secret');
    const english = await search('quin', 'recruit');
    expect(english.every((t) => /recruit/i.test(t))).toBe(true);
    expect(english.length).toBeGreaterThan(0);
    expect(await search('rex', '内推')).toEqual(['recruiter 内推 secret']);
    expect(await search('pam', 'zzzyyyxxx')).toEqual([]);
    expect((await api(fx.p.http, 'GET', '/v1/search?q=%20%21', await fx.p.token('pam'))).body.code).toBe('invalid_request');
  });
});

describe('rate limits', () => {
  it('answer floods with rate_limited and a retry-after, and recover', async () => {
    const tom = await connect('tom');
    const d = await tom.ok({ t: 'create', kind: 'direct', peer: 'uma' });
    const replies = await Promise.all(
      Array.from({ length: 30 }, (_, i) => tom.request({ t: 'send', conversationId: d.conversationId, clientMsgId: `f${i}`, text: `flood ${i}` })),
    );
    const limited = replies.filter((r) => r.t === 'error');
    expect(limited.length).toBeGreaterThan(0);
    expect(limited[0]).toMatchObject({ code: 'rate_limited', retryable: true, retryAfterMs: expect.any(Number) });
    await new Promise((r) => setTimeout(r, limited[0]!.retryAfterMs + 50));
    expect((await tom.send(d.conversationId, 'after waiting')).t).toBe('ack');
  });
});

it('logged no errors', () => {
  expect(fx.p.errorLogs).toEqual([]);
});
