import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStorage, ParleyClient, type WebSocketFactory } from '../clients/sdk/index.js';
import type { EventFrame } from '../contracts/index.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';

let p: TestPlatform;
const clients: ParleyClient[] = [];

function client(userId: string, storage = new MemoryStorage()): { c: ParleyClient; events: EventFrame[]; storage: MemoryStorage } {
  const c = new ParleyClient({
    url: p.ws,
    token: () => p.token(userId),
    storage,
    WebSocket: WebSocket as unknown as WebSocketFactory,
    backoff: { baseMs: 20, maxMs: 200 },
  });
  const events: EventFrame[] = [];
  c.on('event', (e) => events.push(e));
  clients.push(c);
  return { c, events, storage };
}
const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};
const texts = (events: EventFrame[]) => events.filter((e) => e.event.type === 'message.sent').map((e) => (e.event.data as { text: string }).text);

beforeAll(async () => {
  p = await startTestPlatform({ env: { RATE_SENDS_PER_SECOND: '1000', RATE_FRAMES_PER_SECOND: '1000' } });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await p?.stop();
});

describe('the SDK', () => {
  it('connects, sends with promises, receives typed events, and keeps its position in storage', async () => {
    const a = client('sdk-a');
    const b = client('sdk-b');
    await Promise.all([a.c.connect(), b.c.connect()]);
    expect(a.c.state).toBe('live');
    const created = await a.c.command({ t: 'create', kind: 'direct', peer: 'sdk-b' });
    const conversationId = (created as { conversationId: string }).conversationId;
    const sent = await a.c.send(conversationId, 'from the SDK 🚀');
    expect(sent).toMatchObject({ conversationId, duplicate: false });
    await until(() => texts(b.events).includes('from the SDK 🚀'));
    expect(a.storage.load()).toBe(a.c.position);
  });

  it('queues sends while disconnected and delivers each exactly once after reconnecting and resuming', async () => {
    const a = client('sdk-c');
    const b = client('sdk-d');
    await Promise.all([a.c.connect(), b.c.connect()]);
    const { conversationId } = (await a.c.command({ t: 'create', kind: 'direct', peer: 'sdk-d' })) as { conversationId: string };
    await until(() => b.events.some((e) => e.event.type === 'membership.joined'));
    // Kill a's socket from the server side (as a gateway restart would) and send right away.
    p.platform.gateway.sockets.disconnectAll();
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => a.c.send(conversationId, `queued ${i}`)));
    expect(new Set(results.map((r) => r.seq)).size).toBe(10);
    await until(() => texts(b.events).filter((t) => t.startsWith('queued')).length === 10);
    expect(texts(b.events).filter((t) => t.startsWith('queued'))).toEqual(Array.from({ length: 10 }, (_, i) => `queued ${i}`));
    const history = [];
    for await (const e of p.platform.runtime.store.readSubject(p.platform.runtime.subjects.conv(conversationId), 0)) history.push(e);
    expect(history.filter((e) => e.event.type === 'message.sent')).toHaveLength(10);
  });

  it('resumes after the process restarts, from the stored position, without duplicates', async () => {
    const storage = new MemoryStorage();
    const first = client('sdk-e', storage);
    await first.c.connect();
    const other = client('sdk-f');
    await other.c.connect();
    const { conversationId } = (await other.c.command({ t: 'create', kind: 'direct', peer: 'sdk-e' })) as { conversationId: string };
    await other.c.send(conversationId, 'before restart');
    await until(() => texts(first.events).includes('before restart'));
    first.c.close();
    await other.c.send(conversationId, 'while the app was closed');
    const second = client('sdk-e', storage);
    const synced: unknown[] = [];
    second.c.on('synced', (s) => synced.push(s));
    await second.c.connect();
    await until(() => texts(second.events).includes('while the app was closed'));
    expect(texts(second.events)).toEqual(['while the app was closed']);
    expect(synced[0]).toMatchObject({ status: 'complete' });
  });

  it('stays live through a removal and a rejoin, and through a resume across both (no false gap from prevSeq)', async () => {
    const owner = client('sdk-h');
    const member = client('sdk-i');
    await Promise.all([owner.c.connect(), member.c.connect()]);
    const syncs: unknown[] = [];
    member.c.on('synced', (s) => syncs.push(s));
    const { conversationId } = (await owner.c.command({ t: 'create', kind: 'group', title: 'in and out', members: ['sdk-i'] })) as { conversationId: string };
    await owner.c.send(conversationId, 'first');
    await until(() => texts(member.events).includes('first'));
    await owner.c.command({ t: 'remove_member', conversationId, userId: 'sdk-i' });
    await until(() => member.events.some((e) => e.event.type === 'membership.left'));
    await owner.c.send(conversationId, 'while out');
    await owner.c.command({ t: 'add_members', conversationId, userIds: ['sdk-i'] });
    await owner.c.send(conversationId, 'back in');
    await until(() => texts(member.events).includes('back in'));
    // The events after the rejoin name predecessors the member never saw: that is no gap, and no reconnect.
    expect(syncs).toHaveLength(0);
    expect(texts(member.events)).toEqual(['first', 'back in']);
    // A resume that replays past both keeps going too.
    p.platform.gateway.sockets.disconnectAll();
    await owner.c.send(conversationId, 'after the resume');
    await until(() => texts(member.events).includes('after the resume'));
    await new Promise((r) => setTimeout(r, 200));
    expect(syncs).toHaveLength(1);
    expect(member.c.state).toBe('live');
  });

  it('fails commands other than send when the connection is not live, with a typed error', async () => {
    const lonely = client('sdk-g');
    await expect(lonely.c.command({ t: 'block', userId: 'x' })).rejects.toMatchObject({ code: 'unavailable' });
    await lonely.c.connect();
    await expect(lonely.c.command({ t: 'recall', conversationId: 'g_1', messageId: '1' })).rejects.toMatchObject({ code: 'not_member' });
  });
});
