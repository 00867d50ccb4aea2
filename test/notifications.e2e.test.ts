import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNotifier, type NotifierService } from '../services/notifier/service.js';
import { HttpReceiver } from './support/http-receiver.js';
import { notificationApi, verifySignature, waitFor } from './support/notifications.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';
import { TestClient } from './support/ws-client.js';

const WINDOW_MS = 1000;
let p: TestPlatform;
let hooks: HttpReceiver;
let n: ReturnType<typeof notificationApi>;
let ana: TestClient;
const clients: TestClient[] = [];
const secrets = new Map<string, string>();

async function connect(userId: string): Promise<TestClient> {
  const c = await TestClient.connect(p.ws, await p.token(userId));
  clients.push(c);
  return c;
}
/** Registers a webhook at /<user> on the local receiver and keeps its secret. */
async function hook(userId: string): Promise<void> {
  secrets.set(userId, (await n.webhook(userId, hooks.url(`/${userId}`))).secret);
}
const bodies = (userId: string) => hooks.on(`/${userId}`).map((r) => JSON.parse(r.body.toString('utf8')));
const send = (conversationId: string, text: string) => ana.ok({ t: 'send', conversationId, clientMsgId: `m${Math.random().toString(36).slice(2)}`, text });

beforeAll(async () => {
  p = await startTestPlatform({
    // The receiver is on 127.0.0.1: private targets are refused unless allowed (notification-targets tests).
    env: {
      NOTIFY_COALESCE_MS: String(WINDOW_MS),
      NOTIFY_ALLOW_HTTP: 'true',
      NOTIFY_ALLOW_PRIVATE_TARGETS: 'true',
      NOTIFY_RETRY_BASE_MS: '200',
      NOTIFY_MAX_ATTEMPTS: '3',
    },
  });
  hooks = await HttpReceiver.start();
  n = notificationApi(p);
  ana = await connect('ana');
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await p?.stop();
  await hooks?.close();
});

describe('notifications for offline members', () => {
  it('one per coalescing window for an offline member; none for an online or a muted one', async () => {
    await Promise.all(['bea', 'cid', 'dan'].map(hook));
    const cid = await connect('cid');
    await waitFor('cid online', async () => (await n.as('cid', 'GET', '/v1/presence?userIds=cid')).body.presence?.[0]?.status === 'online');
    const g = await ana.ok({ t: 'create', kind: 'group', title: 'Team', members: ['bea', 'cid', 'dan'] });
    await cid.joined(g.conversationId);
    const mute = await n.command('dan', { t: 'set_preferences', conversationId: g.conversationId, mutedUntil: Date.now() + 3_600_000 });
    expect(mute.status).toBe(200);

    const first = await send(g.conversationId, 'one');
    await send(g.conversationId, 'two 你好');
    const third = await send(g.conversationId, 'three @bea 👋🏽');
    const [one] = await waitFor('the first notification', () => hooks.on('/bea').length === 1 && bodies('bea'));
    expect(one).toMatchObject({
      type: 'parley.notification',
      userId: 'bea',
      conversationId: g.conversationId,
      conversationKind: 'group',
      title: 'Team',
      count: 3,
      mentioned: true,
      senderId: 'ana',
      preview: 'three @bea 👋🏽',
      firstSeq: first.seq,
      lastSeq: third.seq,
    });
    expect(hooks.on('/bea')[0]!.at - first.at).toBeGreaterThanOrEqual(WINDOW_MS - 50);
    expect(verifySignature(hooks.on('/bea')[0]!, secrets.get('bea')!)).toBe(true);
    expect(verifySignature(hooks.on('/bea')[0]!, 'not-the-secret-0123456789')).toBe(false);

    // After the window closed, the next message opens a new one.
    const fourth = await send(g.conversationId, 'four');
    const second = await waitFor('the second notification', () => hooks.on('/bea').length === 2 && bodies('bea')[1]);
    expect(second).toMatchObject({ count: 1, firstSeq: fourth.seq, lastSeq: fourth.seq, mentioned: false });
    const listed = await waitFor('both sent', async () => ((await n.list('bea', 'sent')).length === 2 ? n.list('bea') : null));
    expect(listed.map((x) => [x.status, x.count, x.deliveries[0].attempts])).toEqual([
      ['sent', 1, 1],
      ['sent', 3, 1],
    ]);

    expect(hooks.on('/cid')).toEqual([]);
    expect(hooks.on('/dan')).toEqual([]);
    expect(await n.list('cid')).toEqual([]);
    expect(await n.list('dan')).toEqual([]);
  });

  it('in channels, only members who are mentioned', async () => {
    await Promise.all(['jon', 'kim'].map(hook));
    const c = await ana.ok({ t: 'create', kind: 'channel', title: 'News', members: ['jon', 'kim'], postPolicy: 'admins', joinPolicy: 'open' });
    await send(c.conversationId, 'hello everyone');
    const ping = await send(c.conversationId, 'ping @jon');
    const [got] = await waitFor('jon notified', () => hooks.on('/jon').length === 1 && bodies('jon'));
    expect(got).toMatchObject({ conversationKind: 'channel', count: 1, mentioned: true, firstSeq: ping.seq });
    expect(await n.list('kim')).toEqual([]);
  });

  it('a receiver that fails twice gets it on the third try; one that keeps failing ends failed with the reason', async () => {
    await Promise.all(['eve', 'fay'].map(hook));
    hooks.respond = (req) => (req.path === '/eve' && hooks.on('/eve').length < 2 ? 500 : req.path === '/fay' ? 503 : 200);
    const de = await ana.ok({ t: 'create', kind: 'direct', peer: 'eve' });
    const df = await ana.ok({ t: 'create', kind: 'direct', peer: 'fay' });
    await send(de.conversationId, 'are you there?');
    await send(df.conversationId, 'and you?');
    const [eve] = await waitFor('eve sent', async () => (await n.list('eve', 'sent')).length === 1 && n.list('eve'));
    const tries = hooks.on('/eve');
    expect(tries.map((r) => [r.status, r.headers['parley-attempt']])).toEqual([
      [500, '1'],
      [500, '2'],
      [200, '3'],
    ]);
    expect(new Set(tries.map((r) => r.body.toString())).size).toBe(1);
    // Backoff: base 200 ms in this file (1 s by default), doubling.
    expect(tries[1]!.at - tries[0]!.at).toBeGreaterThanOrEqual(180);
    expect(tries[2]!.at - tries[1]!.at).toBeGreaterThanOrEqual(380);
    expect(eve.deliveries).toEqual([expect.objectContaining({ status: 'sent', attempts: 3, lastError: null })]);

    const [fay] = await waitFor('fay failed', async () => (await n.list('fay', 'failed')).length === 1 && n.list('fay'));
    expect(hooks.on('/fay')).toHaveLength(3);
    expect(fay.reason).toContain('HTTP 503');
    expect(fay.deliveries[0]).toMatchObject({ status: 'failed', attempts: 3 });
  });

  it('reading on another device clears a pending notification before it is sent', async () => {
    await hook('gus');
    const d = await ana.ok({ t: 'create', kind: 'direct', peer: 'gus' });
    const m = await send(d.conversationId, 'read me elsewhere');
    await waitFor('gus pending', async () => (await n.list('gus', 'pending')).length === 1);
    // Over HTTP: a read on some device that holds no live connection (so gus stays offline).
    expect((await n.command('gus', { t: 'mark_read', conversationId: d.conversationId, seq: m.seq })).status).toBe(200);
    const [cleared] = await waitFor('gus cleared', async () => (await n.list('gus', 'cleared')).length === 1 && n.list('gus'));
    expect(cleared).toMatchObject({ status: 'cleared', reason: 'read', deliveries: [] });
    await new Promise((r) => setTimeout(r, WINDOW_MS + 300));
    expect(hooks.on('/gus')).toEqual([]);
  });

  it('replaying the log from the start sends nothing again, and the notifier goes on afterwards', async () => {
    // cid was online for the first test's messages: a replay that re-evaluated them would notify cid now.
    await Promise.all(clients.filter((c) => c !== ana).map((c) => c.close()));
    const before = {
      requests: hooks.requests.length,
      rows: await p.platform.runtime.db.selectFrom('notifications').select(['id', 'status', 'message_count']).orderBy('id').execute(),
    };
    const rt = p.platform.runtime;
    await p.platform.notifier!.stop();
    await sql`update projector_checkpoints set seq = 0 where projector = 'notifier'`.execute(rt.db);
    let replayed: NotifierService | undefined;
    try {
      replayed = await startNotifier(rt);
      const last = (await rt.nats.jsm.streams.info(rt.shards[0]!.stream)).state.last_seq;
      await waitFor('the replay to finish', () => replayed!.runner.checkpoint >= last);
      await new Promise((r) => setTimeout(r, WINDOW_MS + 500));
      expect(hooks.requests.length).toBe(before.requests);
      expect(await rt.db.selectFrom('notifications').select(['id', 'status', 'message_count']).orderBy('id').execute()).toEqual(before.rows);

      const g = await ana.ok({ t: 'create', kind: 'direct', peer: 'bea' });
      await send(g.conversationId, 'after the replay');
      await waitFor('bea notified after the replay', () => bodies('bea').some((b) => b.preview === 'after the replay'));
    } finally {
      await replayed?.stop();
    }
    expect(p.errorLogs).toEqual([]);
  });
});
