import { describe, expect, it } from 'vitest';
import { ServerFrame } from '../contracts/index.js';
import { usePlatform } from './support/fixture.js';
import { api, TestClient } from './support/ws-client.js';

const fx = usePlatform();
const connect = (userId: string) => fx.connect(userId);

async function createDirect(userId: string, peer: string) {
  const r = await api(fx.p.http, 'POST', '/v1/conversations', await fx.p.token(userId), { kind: 'direct', peer });
  expect([200, 201]).toContain(r.status);
  return r.body as { conversationId: string; seq: number; created: boolean };
}

describe('two users chat over real WebSockets', () => {
  it('delivers a message live to both members, acks the sender with its position, and keeps it in history', async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    const conv = await createDirect('alice', 'bob');
    expect(conv.created).toBe(true);
    // Both learn about the new conversation on their own user subject.
    await alice.joined(conv.conversationId);
    await bob.joined(conv.conversationId);

    const text = 'Would you please give an example of a bar raising answer? 谢谢 🙏';
    const ack = await alice.send(conv.conversationId, text, 'msg-1');
    expect(ack.t).toBe('ack');
    expect(ack.result).toMatchObject({ conversationId: conv.conversationId, clientMsgId: 'msg-1', duplicate: false });
    expect(ack.result.seq).toBeGreaterThan(conv.seq);
    expect(ack.result.pos).toMatch(/^p1\./);

    const [atBob, atAlice] = await Promise.all([bob.message(conv.conversationId, text), alice.message(conv.conversationId, text)]);
    for (const f of [atBob, atAlice]) {
      expect(ServerFrame.parse(f)).toBeTruthy();
      expect(f.event.actor).toBe('alice');
      expect(f.seq).toBe(ack.result.seq);
      expect(f.event.data.messageId).toBe(ack.result.messageId);
    }

    const reply = await bob.send(conv.conversationId, '个人开发可以，看你怎么讲了');
    expect(reply.t).toBe('ack');
    await alice.message(conv.conversationId, '个人开发可以，看你怎么讲了');

    const history = await api(fx.p.http, 'GET', `/v1/conversations/${conv.conversationId}/messages?after=${reply.result.seq}`, await fx.p.token('bob'));
    expect(history.status).toBe(200);
    expect(history.body.messages.map((m: { text: string }) => m.text)).toEqual(['个人开发可以，看你怎么讲了', text]);
    expect(history.body.messages[1]).toMatchObject({ senderId: 'alice', messageId: ack.result.messageId, seq: ack.result.seq });
  });

  it('has exactly one 1:1 conversation per pair, whoever creates it and however often', async () => {
    const [a, b, c] = await Promise.all([createDirect('carol', 'dave'), createDirect('dave', 'carol'), createDirect('carol', 'dave')]);
    expect(new Set([a.conversationId, b.conversationId, c.conversationId]).size).toBe(1);
    expect([a, b, c].filter((r) => r.created)).toHaveLength(1);
  });

  it('creates a group with initial members who all receive its messages; the list shows the latest message', async () => {
    const members = ['gina', 'hank', 'ivy'];
    const [gina, hank, ivy] = await Promise.all(members.map(connect));
    const created = await api(fx.p.http, 'POST', '/v1/conversations', await fx.p.token('gina'), {
      kind: 'group',
      title: 'BQ prep 小组',
      members: ['hank', 'ivy', 'hank'],
    });
    expect(created.status).toBe(201);
    const id = created.body.conversationId as string;
    await Promise.all([gina!, hank!, ivy!].map((c) => c.joined(id)));
    const ack = await hank!.send(id, 'money incentive 可以搞笑的方式带过');
    await Promise.all([gina!, ivy!, hank!].map((c) => c.message(id, 'money incentive 可以搞笑的方式带过')));

    const list = await api(fx.p.http, 'GET', `/v1/conversations?after=${ack.result.seq}`, await fx.p.token('ivy'));
    expect(list.status).toBe(200);
    const group = list.body.conversations.find((c: { conversationId: string }) => c.conversationId === id);
    expect(group).toMatchObject({ kind: 'group', title: 'BQ prep 小组', role: 'member', memberCount: 3, peer: null });
    expect(group.lastMessage).toMatchObject({ senderId: 'hank', text: 'money incentive 可以搞笑的方式带过' });
  });

  it('returns history newest first with cursor pagination', async () => {
    const jo = await connect('jo');
    const conv = await createDirect('jo', 'kim');
    await jo.joined(conv.conversationId);
    let last = 0;
    for (let i = 1; i <= 7; i++) last = (await jo.send(conv.conversationId, `message ${i}`)).result.seq;
    const token = await fx.p.token('kim');
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = `?limit=3&after=${last}${cursor ? `&before=${cursor}` : ''}`;
      const page = await api(fx.p.http, 'GET', `/v1/conversations/${conv.conversationId}/messages${q}`, token);
      expect(page.status).toBe(200);
      seen.push(...page.body.messages.map((m: { text: string }) => m.text));
      cursor = page.body.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual([7, 6, 5, 4, 3, 2, 1].map((i) => `message ${i}`));
  });
});

describe('membership is enforced', () => {
  it('a non-member can neither read history, nor post, nor receive', async () => {
    const lee = await connect('lee');
    const mo = await connect('mo');
    const eve = await connect('eve');
    const conv = await createDirect('lee', 'mo');
    await lee.joined(conv.conversationId);
    await mo.joined(conv.conversationId);

    const post = await eve.send(conv.conversationId, 'let me in');
    expect(post).toMatchObject({ t: 'error', code: 'not_member', retryable: false });

    const history = await api(fx.p.http, 'GET', `/v1/conversations/${conv.conversationId}/messages?after=${conv.seq}`, await fx.p.token('eve'));
    expect(history.status).toBe(403);
    expect(history.body.code).toBe('not_member');

    const secret = 'only for lee and mo';
    const ack = await lee.send(conv.conversationId, secret);
    await mo.message(conv.conversationId, secret);
    // Eve's connection is live (it answers a ping after the message was fanned out) but got nothing.
    expect((await eve.request({ t: 'ping' })).t).toBe('pong');
    expect(eve.frames.some((f) => f.t === 'event' && f.event.data?.conversationId === conv.conversationId)).toBe(false);

    const after = await api(fx.p.http, 'GET', `/v1/conversations/${conv.conversationId}/messages?after=${ack.result.seq}`, await fx.p.token('mo'));
    expect(after.body.messages.map((m: { text: string }) => m.text)).toEqual([secret]);
    expect(after.body.messages.some((m: { text: string }) => m.text === 'let me in')).toBe(false);
  });

  it('the sender is always the authenticated user: a spoofed sender field is rejected, not honoured', async () => {
    const nia = await connect('nia');
    const conv = await createDirect('nia', 'oli');
    await nia.joined(conv.conversationId);
    const spoof = await nia.request({ t: 'send', conversationId: conv.conversationId, clientMsgId: 'x1', text: 'hi', actor: 'oli' });
    expect(spoof).toMatchObject({ t: 'error', code: 'invalid_frame' });
    const ok = await nia.send(conv.conversationId, 'really me');
    const live = await nia.message(conv.conversationId, 'really me');
    expect(ok.t).toBe('ack');
    expect(live.event.actor).toBe('nia');
  });

  it('refuses WebSocket upgrades and API calls without a valid token', async () => {
    await expect(TestClient.connect(fx.p.ws, 'not-a-token')).rejects.toThrow(/401/);
    const r = await api(fx.p.http, 'GET', '/v1/conversations', 'garbage');
    expect(r.status).toBe(401);
    expect(r.body.code).toBe('unauthenticated');
    const none = await api(fx.p.http, 'GET', '/v1/conversations');
    expect(none.status).toBe(401);
  });
});

describe('the gateway answers /healthz', () => {
  it("reports NATS, Postgres, ClickHouse and the projector's lag as ok", async () => {
    const r = await api(fx.p.http, 'GET', '/healthz');
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('ok');
    // NATS, Postgres and ClickHouse at least; workers add their own checks (projector lag, notifier).
    expect(Object.keys(r.body.checks)).toEqual(expect.arrayContaining(['clickhouse', 'nats', 'postgres']));
    expect(Object.values(r.body.checks as Record<string, { ok: boolean }>).every((c) => c.ok)).toBe(true);
  });
});

describe('nothing unexpected was logged', () => {
  it('has no error log lines', () => {
    expect(fx.p.errorLogs).toEqual([]);
  });
});
