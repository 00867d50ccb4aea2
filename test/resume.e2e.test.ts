import { describe, expect, it } from 'vitest';
import { CloseCode, decodePosition, encodeShardPosition } from '../contracts/index.js';
import { usePlatform } from './support/fixture.js';
import { api, type TestClient, type Frame } from './support/ws-client.js';

const fx = usePlatform({
  env: {
    MAX_BUFFERED_BYTES: '65536',
    MAX_REPLAY_EVENTS: '80',
    STREAM_DUPLICATE_WINDOW_SECONDS: '1',
    RATE_SENDS_PER_SECOND: '1000',
    RATE_FRAMES_PER_SECOND: '1000',
  },
});
const connect = (userId: string, position?: string | null) => fx.connect(userId, position);

/** Event frames received after the welcome, as (seq, type) pairs. */
const events = (c: TestClient) => c.frames.filter((f) => f.t === 'event');
const synced = (c: TestClient) => c.frames.find((f) => f.t === 'synced')!;

describe('resume', () => {
  it('replays exactly what a device missed, in order, then goes live; joined conversations appear, left ones stop', async () => {
    const laptop = await connect('zoe');
    const [yan, xia] = await Promise.all([connect('yan'), connect('xia')]);
    const keep = await yan.ok({ t: 'create', kind: 'group', title: 'keep', members: ['zoe'] });
    const leave = await yan.ok({ t: 'create', kind: 'group', title: 'leave', members: ['zoe'] });
    await laptop.joined(keep.conversationId);
    await laptop.joined(leave.conversationId);
    await yan.send(keep.conversationId, 'seen live');
    await laptop.message(keep.conversationId, 'seen live');
    const position = laptop.position!;
    await laptop.close();

    // While away: messages, a removal, a new conversation, a read marker from another device.
    await yan.send(keep.conversationId, 'missed 1');
    await yan.send(leave.conversationId, 'last words before removal');
    await yan.ok({ t: 'remove_member', conversationId: leave.conversationId, userId: 'zoe' });
    await yan.send(leave.conversationId, 'after removal: never for zoe');
    const joined = await xia.ok({ t: 'create', kind: 'direct', peer: 'zoe' });
    await xia.send(joined.conversationId, 'hello from a new 1:1');
    const phone = await connect('zoe');
    await phone.ok({ t: 'mark_read', conversationId: keep.conversationId, seq: (await yan.send(keep.conversationId, 'missed 2')).result.seq });
    await phone.close();

    const back = await connect('zoe', position);
    await back.next((f) => f.t === 'event' && f.event.data?.text === 'hello from a new 1:1');
    const got = events(back);
    const texts = got.filter((f) => f.event.type === 'message.sent').map((f) => f.event.data.text);
    expect(texts).toEqual(expect.arrayContaining(['missed 1', 'last words before removal', 'missed 2', 'hello from a new 1:1']));
    expect(texts).not.toContain('seen live');
    expect(texts).not.toContain('after removal: never for zoe');
    expect(got.some((f) => f.event.type === 'read.marked' && f.event.data.conversationId === keep.conversationId)).toBe(true);
    expect(got.some((f) => f.event.type === 'member.removed' && f.event.data.userId === 'zoe')).toBe(true);
    expect(synced(back)).toMatchObject({ status: 'complete' });
    expect(new Set(got.map((f) => f.seq)).size).toBe(got.length);
    expectOrderedPerEntity(got);

    // Live afterwards, and the left conversation stays silent.
    await yan.send(keep.conversationId, 'live again');
    await back.message(keep.conversationId, 'live again');
    await yan.send(leave.conversationId, 'still not for zoe');
    await yan.send(keep.conversationId, 'barrier');
    await back.message(keep.conversationId, 'barrier');
    expect(back.frames.some((f) => f.t === 'event' && f.event.data?.text === 'still not for zoe')).toBe(false);
  });

  it('has no gap and no duplicate at the seam while events keep arriving during the resume', async () => {
    const w = await connect('wes');
    const g = await w.ok({ t: 'create', kind: 'group', title: 'seam', members: ['vic'] });
    const vic = await connect('vic');
    for (let i = 0; i < 20; i++) await w.send(g.conversationId, `before ${i}`);
    await vic.message(g.conversationId, 'before 19');
    const position = vic.position!;
    await vic.close();
    for (let i = 0; i < 20; i++) await w.send(g.conversationId, `offline ${i}`);
    // Reconnect while 30 more messages are being sent.
    const sending = (async () => {
      for (let i = 0; i < 30; i++) await w.send(g.conversationId, `during ${i}`);
    })();
    const back = await connect('vic', position);
    await sending;
    await back.message(g.conversationId, 'during 29');
    const texts = events(back)
      .filter((f) => f.event.type === 'message.sent')
      .map((f) => f.event.data.text);
    expect(texts).toEqual([...Array.from({ length: 20 }, (_, i) => `offline ${i}`), ...Array.from({ length: 30 }, (_, i) => `during ${i}`)]);
  });

  it('answers honestly when it cannot replay: no position, foreign position, other epoch, too far behind', async () => {
    const fresh = await connect('uri');
    expect(synced(fresh)).toMatchObject({ status: 'resync_needed', resync: { reason: 'no_position', conversations: null } });
    const bogus = await connect('uri', 'p1.bm90LWEtdG9rZW4');
    expect(synced(bogus)).toMatchObject({ status: 'resync_needed', resync: { reason: 'invalid_position' } });
    const current = decodePosition(fresh.position!)![0]!;
    const otherEpoch = await connect('uri', encodeShardPosition({ ...current, epoch: '1' }));
    expect(synced(otherEpoch)).toMatchObject({ status: 'resync_needed', resync: { reason: 'epoch_changed', conversations: null } });

    const busy = await fresh.ok({ t: 'create', kind: 'direct', peer: 'tess' });
    const tess = await connect('tess');
    const pos = tess.position!;
    await tess.close();
    let lastSeq = 0;
    for (let i = 0; i < 90; i++) lastSeq = (await fresh.send(busy.conversationId, `flood ${i}`)).result.seq;
    const behind = await connect('tess', pos);
    expect(synced(behind)).toMatchObject({ status: 'resync_needed', resync: { reason: 'too_far_behind', conversations: [busy.conversationId] } });
    expect(events(behind)).toEqual([]);
    // History is complete over HTTP, which is what the answer tells the client to use.
    const h = await api(fx.p.http, 'GET', `/v1/conversations/${busy.conversationId}/messages?limit=100&after=${lastSeq}`, await fx.p.token('tess'));
    expect(h.body.messages).toHaveLength(90);
  });

  it('marks read on one device and the other devices see it live and after resume', async () => {
    const a = await connect('rue');
    const d = await a.ok({ t: 'create', kind: 'direct', peer: 'sol' });
    const desktop = await connect('sol');
    const tablet = await connect('sol');
    const m = await a.send(d.conversationId, 'read me');
    await desktop.message(d.conversationId, 'read me');
    const tabletPos = tablet.position!;
    await tablet.close();
    await desktop.ok({ t: 'mark_read', conversationId: d.conversationId, seq: m.result.seq });
    const back = await connect('sol', tabletPos);
    await back.event('read.marked', (x) => x.conversationId === d.conversationId);
    const unread = await api(fx.p.http, 'GET', '/v1/unread', await fx.p.token('sol'));
    expect(unread.body.total).toBe(0);
  });
});

describe('idempotent sends', () => {
  it('return the original message for a retry long after the log dedup window, and store one event', async () => {
    const c = await connect('ida');
    const d = await c.ok({ t: 'create', kind: 'direct', peer: 'ivo' });
    const first = await c.ok({ t: 'send', conversationId: d.conversationId, clientMsgId: 'once-only', text: 'exactly once' });
    await api(fx.p.http, 'GET', `/v1/conversations/${d.conversationId}/messages?after=${first.seq}`, await fx.p.token('ida'));
    await new Promise((r) => setTimeout(r, 1500)); // past the 1 s dedup window configured for this file
    const retry = await c.ok({ t: 'send', conversationId: d.conversationId, clientMsgId: 'once-only', text: 'exactly once' });
    expect(retry).toMatchObject({ messageId: first.messageId, seq: first.seq, duplicate: true });
    const stored = [];
    for await (const e of fx.p.platform.runtime.store.readSubject(fx.p.platform.runtime.subjects.conv(d.conversationId), 0)) stored.push(e);
    expect(stored.filter((e) => e.event.type === 'message.sent')).toHaveLength(1);
  });
});

describe('slow readers', () => {
  it('are disconnected with the documented close code once their buffer is full, and can resume', async () => {
    const fast = await connect('pia');
    const d = await fast.ok({ t: 'create', kind: 'direct', peer: 'ned-slow' });
    const slow = await connect('ned-slow');
    const pos = slow.position!;
    (slow.socket as unknown as { _socket: { pause(): void } })._socket.pause();
    // 4-byte code points: the largest frames the text limit allows, to fill the socket buffers quickly.
    const big = '😀'.repeat(3990);
    const serverSide = () => fx.p.platform.gateway.sockets.connectionCount;
    const before = serverSide();
    // The client reads nothing; the server must notice on its own and let go of the socket.
    for (let i = 0; i < 200 && serverSide() === before; i++) {
      await Promise.all(Array.from({ length: 20 }, (_, j) => fast.send(d.conversationId, `${i}.${j} ${big}`)));
    }
    expect(serverSide()).toBe(before - 1);
    (slow.socket as unknown as { _socket: { resume(): void } })._socket.resume();
    expect((await slow.closed).code).toBe(CloseCode.slowReader);
    const back = await connect('ned-slow', pos);
    expect(synced(back).status).toMatch(/complete|resync_needed/);
  });
});

describe('slow readers hit by a burst', () => {
  // The close frame queues behind the unsent bytes: the server must close before uWebSockets' own hard cap
  // (16x MAX_BUFFERED_BYTES) is reached, or that cap drops the close frame too and the client sees 1006.
  it('get the documented close code even when far more than the limit is published at once', async () => {
    const fast = await connect('burst-writer');
    const d = await fast.ok({ t: 'create', kind: 'direct', peer: 'burst-reader' });
    const slow = await connect('burst-reader');
    (slow.socket as unknown as { _socket: { pause(): void } })._socket.pause();
    const big = '😀'.repeat(3990);
    const serverSide = () => fx.p.platform.gateway.sockets.connectionCount;
    const before = serverSide();
    // About 6 MB at once: more than the kernel's socket buffers plus 16x the limit, faster than a periodic sweep.
    await Promise.all(Array.from({ length: 400 }, (_, j) => fast.send(d.conversationId, `${j} ${big}`, `burst-${j}`)));
    await expect.poll(serverSide).toBe(before - 1);
    (slow.socket as unknown as { _socket: { resume(): void } })._socket.resume();
    expect((await slow.closed).code).toBe(CloseCode.slowReader);
  });
});

describe('retention', () => {
  // Runs last in this file: it removes the oldest events of the file's stream, as max-age expiry would.
  it('answers resync_needed with the conversations to refetch when the missed events have aged out', async () => {
    const old = await connect('ret-a');
    const d = await old.ok({ t: 'create', kind: 'direct', peer: 'ret-b' });
    const b = await connect('ret-b');
    const pos = b.position!;
    await b.close();
    const gone = await old.send(d.conversationId, 'aged out');
    const { jsm } = fx.p.platform.runtime.nats;
    const stream = fx.p.platform.runtime.store.infoFor(fx.p.platform.runtime.subjects.conv(d.conversationId)).stream;
    await jsm.streams.purge(stream, { seq: gone.result.seq + 1 });
    // The conversation's earlier events left the stream: it still takes new messages (it used to answer `conflict`).
    const kept = await old.send(d.conversationId, 'still in the log');
    expect(kept).toMatchObject({ t: 'ack' });
    expect(kept.result.seq).toBeGreaterThan(gone.result.seq);
    const back = await connect('ret-b', pos);
    expect(synced(back)).toMatchObject({ status: 'resync_needed', resync: { reason: 'retention', conversations: expect.arrayContaining([d.conversationId]) } });
  });
});

it('logged no errors', () => {
  expect(fx.p.errorLogs).toEqual([]);
});

function expectOrderedPerEntity(frames: Frame[]): void {
  const last = new Map<string, number>();
  for (const f of frames) {
    const key = `${f.entity.kind}/${f.entity.id}`;
    expect(f.seq).toBeGreaterThan(last.get(key) ?? 0);
    last.set(key, f.seq);
  }
}
