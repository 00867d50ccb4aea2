import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { MemoryStorage, ParleyClient, type WebSocketFactory } from '../clients/sdk/index.js';
import { decodePosition, encodePosition, type EventFrame } from '../contracts/index.js';
import { shardOf } from '../contracts/shards.js';
import { usePlatform } from './support/fixture.js';
import { api, type Frame, type TestClient } from './support/ws-client.js';

/**
 * Sync with the log spread over two streams (STREAM_SHARDS=2): users and
 * conversations on both shards, live delivery, resume and catch-up, each
 * shard's positions kept apart. Every event frame's `pos` must name the shard
 * its entity lives on, and a device must get exactly what it missed, once,
 * whichever shard it was on.
 */
const fx = usePlatform({ env: { STREAM_SHARDS: '2', RATE_SENDS_PER_SECOND: '1000', RATE_FRAMES_PER_SECOND: '1000' } });

/** A user id on shard `k` (ids are hashed: try a few). */
function userOn(k: number, prefix: string): string {
  for (let i = 0; ; i++) if (shardOf(`${prefix}-${i}`, 2) === k) return `${prefix}-${i}`;
}

/** A group of `owner`'s on shard `k` with `members`: server-minted ids, so create empty ones until one lands there. */
async function groupOn(owner: TestClient, k: number, members: string[]): Promise<string> {
  for (let i = 0; i < 40; i++) {
    const { conversationId } = await owner.ok({ t: 'create', kind: 'group', title: `shard ${k}`, members: [] });
    if (fx.p.platform.runtime.subjects.shardOf(conversationId) !== k) continue;
    if (members.length) await owner.ok({ t: 'add_members', conversationId, userIds: members });
    return conversationId;
  }
  throw new Error(`no group landed on shard ${k}`);
}

/**
 * Puts shard `k`'s stream at least `by` sequences ahead of every other shard, with messages to a group of
 * `viewer`'s, who then has seen them: its position in shard `k` is far beyond any sequence of the other
 * shards, so comparing their sequences with it gives a wrong answer, not a lucky one.
 */
async function putAhead(owner: TestClient, k: number, by: number, viewer: { id: string; client: TestClient }): Promise<void> {
  const { store } = fx.p.platform.runtime;
  const noise = await groupOn(owner, k, [viewer.id]);
  const lastOf = async (shard: number) => (await store.shard(shard).bounds()).lastSeq;
  for (;;) {
    const others = await Promise.all(store.shards.filter((s) => s.shard !== k).map((s) => lastOf(s.shard)));
    const lead = (await lastOf(k)) - Math.max(...others);
    if (lead >= by) break;
    await Promise.all(Array.from({ length: Math.min(50, by - lead) }, (_, i) => owner.send(noise, `noise ${i}`)));
  }
  await owner.send(noise, 'noise done');
  await viewer.client.message(noise, 'noise done');
}

const eventsOf = (c: TestClient, from = 0) => c.frames.slice(from).filter((f) => f.t === 'event');
const syncedOf = (c: TestClient) => c.frames.find((f) => f.t === 'synced')!;
const texts = (frames: Frame[]) => frames.filter((f) => f.event.type === 'message.sent').map((f) => f.event.data.text as string);
const shardOfFrame = (f: Frame | EventFrame) => decodePosition(f.pos as string)![0]!.shard;

/** Each frame's pos is one entry, of its entity's shard, at its seq; an entity's sequences only increase. */
function expectShardedFrames(frames: Frame[]): void {
  const last = new Map<string, number>();
  for (const f of frames) {
    const pos = decodePosition(f.pos)!;
    expect(pos).toHaveLength(1);
    expect(pos[0]).toMatchObject({ shard: shardOf(f.entity.id, 2), seq: f.seq });
    const key = `${f.entity.kind}/${f.entity.id}`;
    expect(f.seq).toBeGreaterThan(last.get(key) ?? 0);
    last.set(key, f.seq);
  }
  // Exactly once: an event is its (shard, seq).
  expect(new Set(frames.map((f) => `${shardOfFrame(f)}:${f.seq}`)).size).toBe(frames.length);
}

describe('sync over two stream shards', () => {
  it('spreads users and conversations over both shards and delivers live from both, each frame positioned in its shard', async () => {
    const [amy, ben, owner] = [userOn(0, 'live-amy'), userOn(1, 'live-ben'), userOn(0, 'live-own')];
    const o = await fx.connect(owner);
    const [a, b] = await Promise.all([fx.connect(amy), fx.connect(ben)]);
    // A synced position names every shard.
    expect(decodePosition(syncedOf(b).position)!.map((p) => p.shard)).toEqual([0, 1]);
    const g0 = await groupOn(o, 0, [amy, ben]);
    const g1 = await groupOn(o, 1, [amy, ben]);
    const { subjects } = fx.p.platform.runtime;
    expect([subjects.shardOf(amy), subjects.shardOf(ben), subjects.shardOf(g0), subjects.shardOf(g1)]).toEqual([0, 1, 0, 1]);
    await b.joined(g0);
    await b.joined(g1);
    await a.send(g0, 'on shard 0');
    await a.send(g1, 'on shard 1');
    await b.message(g0, 'on shard 0');
    await b.message(g1, 'on shard 1');
    const got = eventsOf(b);
    expectShardedFrames(got);
    // Both shards' events reached the one device: user events (shard 1) and both conversations.
    expect(new Set(got.map(shardOfFrame))).toEqual(new Set([0, 1]));
    expect(got.find((f) => f.event.type === 'membership.joined')!.pos).toSatisfy((pos: string) => decodePosition(pos)![0]!.shard === 1);
  });

  it("reads your writes over HTTP in the shard of the conversation, and reports every shard's stream in /healthz", async () => {
    const [jon, owner] = [userOn(0, 'http-jon'), userOn(0, 'http-own')];
    const o = await fx.connect(owner);
    const g0 = await groupOn(o, 0, [jon]);
    const g1 = await groupOn(o, 1, [jon]);
    // Shard 1's sequence far beyond shard 0's end: read as a shard-0 position it would be refused.
    await putAhead(o, 1, 40, { id: owner, client: o });
    const sent = (await o.send(g1, 'read me back')).result;
    const token = await fx.p.token(jon);
    const history = await api(fx.p.http, 'GET', `/v1/conversations/${g1}/messages?after=${sent.seq}`, token);
    expect(history.status).toBe(200);
    expect(history.body.messages.map((m: { text: string }) => m.text)).toContain('read me back');
    const early = (await o.send(g0, 'shard 0 write')).result;
    const list = await api(fx.p.http, 'GET', `/v1/conversations?after=${early.seq}`, token);
    expect(list.status).toBe(200);
    const health = await api(fx.p.http, 'GET', '/healthz');
    expect(health.body.checks.nats.detail).toMatch(new RegExp(`${fx.p.namespace}_events_0 at seq \\d+, stream ${fx.p.namespace}_events_1 at seq \\d+`));
  });

  it('resumes a device with exactly the events it missed on both shards, once, and continuity complete', async () => {
    const [cat, dan, owner] = [userOn(1, 'res-cat'), userOn(0, 'res-dan'), userOn(1, 'res-own')];
    const o = await fx.connect(owner);
    const c = await fx.connect(cat);
    const d = await fx.connect(dan);
    const g0 = await groupOn(o, 0, [cat, dan]);
    const g1 = await groupOn(o, 1, [cat, dan]);
    const gone = await groupOn(o, 0, [cat]);
    await d.send(g0, 'seen 0');
    await d.send(g1, 'seen 1');
    await c.message(g0, 'seen 0');
    await c.message(g1, 'seen 1');
    await c.joined(gone);
    // Shard 0's sequences far beyond shard 1's: shard 1's conversations must be compared with shard 1's position.
    await putAhead(o, 0, 40, { id: cat, client: c });
    const position = c.position!;
    await c.close();

    // While away, on both shards: messages, a removal (shard 0 conversation), a new conversation on shard 1 and a
    // read marker from another device (cat's user subject, shard 1).
    const missed: string[] = [];
    for (let i = 0; i < 4; i++) {
      for (const g of [g0, g1]) {
        await d.send(g, `missed ${g === g0 ? 0 : 1}.${i}`);
        missed.push(`missed ${g === g0 ? 0 : 1}.${i}`);
      }
    }
    await o.send(gone, 'before removal');
    missed.push('before removal');
    await o.ok({ t: 'remove_member', conversationId: gone, userId: cat });
    await o.send(gone, 'after removal: not for cat');
    // Joined while away on each shard (cat's user subject is on shard 1): replayed from the join.
    const fresh = await groupOn(o, 1, [cat]);
    await o.send(fresh, 'in a conversation joined while away');
    missed.push('in a conversation joined while away');
    const freshOther = await groupOn(o, 0, [cat]);
    await o.send(freshOther, 'joined while away, on the other shard');
    missed.push('joined while away, on the other shard');
    const phone = await fx.connect(cat);
    const marked = await phone.ok({ t: 'mark_read', conversationId: g0, seq: (await d.send(g0, 'last')).result.seq });
    missed.push('last');
    expect(marked).toBeDefined();
    await phone.close();

    const back = await fx.connect(cat, position);
    const got = eventsOf(back);
    expect(syncedOf(back)).toMatchObject({ status: 'complete', replayed: got.length });
    expect(texts(got).sort()).toEqual([...missed].sort());
    expect(got.some((f) => f.event.type === 'read.marked' && f.event.data.conversationId === g0)).toBe(true);
    for (const id of [fresh, freshOther]) {
      expect(got.some((f) => f.event.type === 'membership.joined' && f.event.data.conversationId === id)).toBe(true);
      expect(got.find((f) => f.entity.id === id)!.event.type).toBe('members.added');
    }
    expectShardedFrames(got);
    // Each shard's frames arrive in that shard's log order: the highest seen is a safe place to resume from.
    for (const k of [0, 1]) {
      const seqs = got.filter((f) => shardOfFrame(f) === k).map((f) => f.seq);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    }

    // Resuming again from the new position: nothing is sent twice.
    const again = await fx.connect(cat, back.position);
    expect(syncedOf(again)).toMatchObject({ status: 'complete', replayed: 0 });
    expect(eventsOf(again)).toEqual([]);
    // Live afterwards on both shards.
    await d.send(g1, 'live 1');
    await d.send(g0, 'live 0');
    await again.message(g1, 'live 1');
    await again.message(g0, 'live 0');
  });

  it('answers a token without a shard, or of another epoch, per shard: the other shard is still replayed', async () => {
    const [eve, fay, owner] = [userOn(0, 'tok-eve'), userOn(1, 'tok-fay'), userOn(0, 'tok-own')];
    const o = await fx.connect(owner);
    const e = await fx.connect(eve);
    const f = await fx.connect(fay);
    const g0 = await groupOn(o, 0, [eve, fay]);
    const g1 = await groupOn(o, 1, [eve, fay]);
    await e.joined(g0);
    await e.joined(g1);
    const position = e.position!;
    await e.close();
    await f.send(g0, 'away 0');
    await f.send(g1, 'away 1');
    const parts = decodePosition(position)!;

    // No entry for shard 1: shard 0 (eve's user subject and g0) is replayed; g1, on shard 1, is to be refetched.
    const noShard1 = await fx.connect(eve, encodePosition(parts.filter((p) => p.shard === 0)));
    expect(syncedOf(noShard1)).toMatchObject({ status: 'resync_needed', resync: { reason: 'invalid_position', conversations: [g1] } });
    expect(texts(eventsOf(noShard1))).toEqual(['away 0']);
    // The position it ends with names both shards, shard 1 at its end: live from there.
    expect(decodePosition(syncedOf(noShard1).position)!.map((p) => p.shard)).toEqual([0, 1]);

    // Another epoch for shard 0: g0 (and anything else on shard 0) to refetch; shard 1 replayed.
    const otherEpoch = encodePosition(parts.map((p) => (p.shard === 0 ? { ...p, epoch: 'recreated' } : p)));
    const epoch = await fx.connect(eve, otherEpoch);
    expect(syncedOf(epoch)).toMatchObject({ status: 'resync_needed', resync: { reason: 'epoch_changed', conversations: [g0] } });
    expect(texts(eventsOf(epoch))).toEqual(['away 1']);

    // Neither shard usable: everything, as with one shard.
    const none = await fx.connect(eve, encodePosition(parts.map((p) => ({ ...p, epoch: 'recreated' }))));
    expect(syncedOf(none)).toMatchObject({ status: 'resync_needed', resync: { reason: 'epoch_changed', conversations: null } });
    const fresh = await fx.connect(eve);
    expect(syncedOf(fresh)).toMatchObject({ status: 'resync_needed', resync: { reason: 'no_position', conversations: null } });
  });

  it('catches a live device up on a conversation it joins on the other shard', async () => {
    for (const [userShard, convShard] of [
      [0, 1],
      [1, 0],
    ] as const) {
      const [gus, owner] = [userOn(userShard, `cu${userShard}-gus`), userOn(convShard, `cu${userShard}-own`)];
      const o = await fx.connect(owner);
      const g = await fx.connect(gus);
      // Traffic elsewhere first, so the two shards' sequences are far apart.
      const busy = await groupOn(o, userShard, []);
      for (let i = 0; i < 15; i++) await o.send(busy, `noise ${i}`);
      const conv = await groupOn(o, convShard, []);
      await o.send(conv, 'before the join: not replayed');
      const from = g.frames.length;
      // Sent right after the join, while the catch-up runs: once, after the history.
      const adding = o.ok({ t: 'add_members', conversationId: conv, userIds: [gus] });
      await adding;
      await o.send(conv, 'right after the join');
      await g.message(conv, 'right after the join');
      await o.send(conv, 'live after');
      await g.message(conv, 'live after');
      const got = eventsOf(g, from);
      expectShardedFrames(got);
      const convFrames = got.filter((f) => f.entity.kind === 'conv' && f.entity.id === conv);
      expect(convFrames[0]!.event.type).toBe('members.added');
      expect(texts(convFrames)).toEqual(['right after the join', 'live after']);
      expect(convFrames.every((f) => shardOfFrame(f) === convShard)).toBe(true);
    }
  });

  it('keeps an SDK client in step across reconnects on both shards: nothing lost, nothing twice', async () => {
    const [hal, ivy, owner] = [userOn(1, 'sdk-hal'), userOn(0, 'sdk-ivy'), userOn(0, 'sdk-own')];
    const o = await fx.connect(owner);
    const g0 = await groupOn(o, 0, [hal, ivy]);
    const g1 = await groupOn(o, 1, [hal, ivy]);
    const sdk = (userId: string) =>
      new ParleyClient({
        url: fx.p.ws,
        token: () => fx.p.token(userId),
        storage: new MemoryStorage(),
        WebSocket: WebSocket as unknown as WebSocketFactory,
        backoff: { baseMs: 20, maxMs: 200 },
      });
    const [receiver, sender] = [sdk(hal), sdk(ivy)];
    const got: EventFrame[] = [];
    receiver.on('event', (e) => got.push(e));
    try {
      await Promise.all([receiver.connect(), sender.connect()]);
      const sent: string[] = [];
      for (let n = 0; n < 30; n++) {
        const text = `sdk ${n}`;
        // Acknowledged however many reconnects that takes (the SDK re-sends under the same client id).
        await sender.send(n % 2 === 0 ? g0 : g1, text);
        sent.push(text);
        // The gateway drops every socket now and then (as a restart would): the SDKs resume from their positions.
        if (n % 7 === 3) fx.p.platform.gateway.sockets.disconnectAll();
      }
      const deadline = Date.now() + 10_000;
      while (texts(got as unknown as Frame[]).length < sent.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const received = texts(got as unknown as Frame[]);
      expect([...received].sort()).toEqual([...sent].sort());
      // Per conversation, in send order.
      const ofParity = (list: string[], parity: number) => list.filter((t) => Number(t.split(' ')[1]) % 2 === parity);
      expect(ofParity(received, 0)).toEqual(ofParity(sent, 0));
      expect(ofParity(received, 1)).toEqual(ofParity(sent, 1));
      expectShardedFrames(got as unknown as Frame[]);
      // The stored position holds both shards.
      expect(decodePosition(receiver.position!)!.map((p) => p.shard)).toEqual([0, 1]);
    } finally {
      receiver.close();
      sender.close();
    }
  });
});

describe('nothing unexpected was logged', () => {
  it('has no error log lines', () => {
    expect(fx.p.errorLogs).toEqual([]);
  });
});
