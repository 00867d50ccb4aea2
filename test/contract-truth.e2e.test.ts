import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { CloseCode, EventFrame, ServerFrame, TokenResponse } from '../contracts/index.js';
import { TerminalToken } from '../clients/terminal/token.js';
import { EventStore } from '../services/event-log/event-store.js';
import { usePlatform } from './support/fixture.js';
import { api, type Frame, type TestClient } from './support/ws-client.js';

/**
 * What docs/protocol.md promises a client written from it alone: one event is
 * one frame whichever way it arrives, `synced.replayed` counts what came,
 * typing is not echoed to the typist, times are milliseconds, and an
 * attachment id that names no upload is `not_found`.
 */
const fx = usePlatform({ env: { RATE_SENDS_PER_SECOND: '1000', RATE_FRAMES_PER_SECOND: '1000' } });
const connect = (userId: string, position?: string | null) => fx.connect(userId, position);

const eventFrames = (c: TestClient, from = 0) => c.frames.slice(from).filter((f) => f.t === 'event');
const bySeq = (frames: Frame[]) => new Map(frames.map((f) => [f.seq as number, f]));

/** Waits until `c` has answered a ping: every frame sent to it before has arrived. */
async function drained(c: TestClient): Promise<void> {
  const pong = await c.request({ t: 'ping' });
  expect(pong.t).toBe('pong');
}

describe('event frames', () => {
  it('are identical live, in a resume (recent log and JetStream) and in the catch-up after a join, prevSeq included', async () => {
    const ann = await connect('ann');
    const g = await ann.ok({ t: 'create', kind: 'group', title: 'frames', members: ['ben'] });
    const ben = await connect('ben');
    const start = ben.frames.length;
    const sent: number[] = [];
    for (let i = 0; i < 6; i++) sent.push((await ann.send(g.conversationId, `m${i} 你好 👋`)).result.seq);
    // A user-subject event too (ben's own read marker), and a conversation ben joins later.
    const marked = await ben.ok({ t: 'mark_read', conversationId: g.conversationId, seq: sent[2]! });
    await ben.message(g.conversationId, 'm5 你好 👋');
    await ben.event('read.marked', (d) => d.seq === sent[2]);
    const live = bySeq(eventFrames(ben, start));
    for (const f of live.values()) expect(EventFrame.safeParse(f).success).toBe(true);

    // prevSeq is the previous event of the entity: each message's is the one before it.
    for (let i = 1; i < sent.length; i++) expect(live.get(sent[i]!)!.prevSeq).toBe(sent[i - 1]);
    expect(live.get(marked.seq)!.prevSeq).toBeGreaterThan(0); // ben's user subject already had membership.joined

    // A second device of ben resuming from before all of it: the same frames, byte for byte.
    const fresh = await connect('ben', ben.frames.find((f) => f.t === 'synced')!.position);
    const replayed = bySeq(eventFrames(fresh));
    for (const seq of [...sent, marked.seq]) expect(replayed.get(seq)).toEqual(live.get(seq));
    // The first event of each entity in the replay still carries its real predecessor, never null.
    expect(replayed.get(sent[0]!)!.prevSeq).toBe(live.get(sent[0]!)!.prevSeq);
    expect(replayed.get(sent[0]!)!.prevSeq).toBeGreaterThan(0);
    const synced = fresh.frames.find((f) => f.t === 'synced')!;
    expect(ServerFrame.safeParse(synced).success).toBe(true);
    expect(synced.replayed).toBe(eventFrames(fresh).length);
    expect(synced.replayed).toBeGreaterThanOrEqual(sent.length + 1);

    // Catch-up after a join, on a live connection: the conversation's history from the join comes from the log, and
    // its first frame (the join itself, whose predecessor cal never saw) equals ann's live one, prevSeq included.
    const cal = await connect('cal');
    const added = await ann.ok({ t: 'add_members', conversationId: g.conversationId, userIds: ['cal'] });
    const [caught, annLive] = await Promise.all([cal, ann].map((c) => c.next((f) => f.t === 'event' && f.seq === added.seq)));
    expect(caught).toEqual(annLive);
    expect(caught!.prevSeq).toBe(sent.at(-1));
  });

  it('carry the prevSeq the log records: reads from JetStream (a resume beyond the recent log) and the lookup for older events agree with live', async () => {
    const dee = await connect('dee');
    const g = await dee.ok({ t: 'create', kind: 'group', title: 'store path', members: ['eve'] });
    const eve = await connect('eve');
    const start = eve.frames.length;
    for (let i = 0; i < 3; i++) await dee.send(g.conversationId, `s${i}`);
    await eve.message(g.conversationId, 's2');
    const live = bySeq(eventFrames(eve, start));
    // Reads straight from the store, as a gateway without (or beyond) its recent-log window does.
    const subject = fx.p.platform.runtime.subjects.conv(g.conversationId);
    const store = fx.p.platform.runtime.store.storeFor(subject);
    const { firstSeq, lastSeq } = await store.bounds();
    const stored = (await store.readSubjects([subject], firstSeq - 1, lastSeq, 1000)).events;
    for (const e of stored) {
      const frame = live.get(e.seq);
      if (frame) expect(e.prevSeq).toBe(frame.prevSeq);
    }
    expect(stored.filter((e) => live.has(e.seq))).toHaveLength(3);
    // Each stored event's prevSeq chains to the one before it on the subject, 0 for the first.
    expect(stored.map((e) => e.prevSeq)).toEqual([0, ...stored.slice(0, -1).map((e) => e.seq)]);
    // And events stored without the header (older versions) are resolved to the same value.
    for (const e of stored) expect(await store.previousOnSubject(subject, e.seq)).toBe(e.prevSeq);
  });
});

describe('appends', () => {
  it('record the exact previous sequence of their subject, also when several writers race without expectations', async () => {
    const { nats, subjects } = fx.p.platform.runtime;
    const subject = subjects.user('kim');
    const store = fx.p.platform.runtime.store.storeFor(subject);
    // A second writer process on the same stream (a gateway and the membership reactor, say).
    const other = new EventStore(nats.nc, nats.js, nats.jsm, store.stream);
    try {
      const base = { v: 1 as const, at: Date.now(), actor: 'kim' };
      const event = (seq: number) => ({ type: 'read.marked' as const, ...base, data: { conversationId: 'g_1', seq } });
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? other : store).append(subject, event(i + 1))));
      expect(new Set(results.map((r) => r.seq)).size).toBe(40);
      const { firstSeq, lastSeq } = await store.bounds();
      const stored = (await store.readSubjects([subject], firstSeq - 1, lastSeq, 1000)).events;
      expect(stored).toHaveLength(40);
      expect(stored.map((e) => e.prevSeq)).toEqual([0, ...stored.slice(0, -1).map((e) => e.seq)]);
    } finally {
      other.close();
    }
  });
});

describe('typing', () => {
  it("reaches the other members, and none of the typist's own connections", async () => {
    const fay = await connect('fay');
    const fayPhone = await connect('fay');
    const d = await fay.ok({ t: 'create', kind: 'direct', peer: 'gus' });
    const gus = await connect('gus');
    const marks = [fay.frames.length, fayPhone.frames.length];
    fay.sendRaw(JSON.stringify({ t: 'typing', id: 't1', conversationId: d.conversationId }));
    const typing = await gus.next((f) => f.t === 'typing' && f.userId === 'fay');
    expect(ServerFrame.safeParse(typing).success).toBe(true);
    // Milliseconds, a few seconds ahead.
    expect(typing.expiresAt - Date.now()).toBeGreaterThan(1000);
    expect(typing.expiresAt - Date.now()).toBeLessThan(60_000);
    await Promise.all([drained(fay), drained(fayPhone)]);
    expect(fay.frames.slice(marks[0]).filter((f) => f.t === 'typing')).toEqual([]);
    expect(fayPhone.frames.slice(marks[1]).filter((f) => f.t === 'typing')).toEqual([]);
    // The typist's connections stay on the conversation: the next message reaches both.
    await gus.send(d.conversationId, 'after typing');
    await Promise.all([fay.message(d.conversationId, 'after typing'), fayPhone.message(d.conversationId, 'after typing')]);
    // And gus's typing reaches both of fay's devices.
    gus.sendRaw(JSON.stringify({ t: 'typing', id: 't2', conversationId: d.conversationId }));
    await Promise.all([fay, fayPhone].map((c) => c.next((f) => f.t === 'typing' && f.userId === 'gus')));
  });
});

describe('attachments in a send', () => {
  let sender: { hal: TestClient; conversationId: string } | null = null;
  const conversation = async () => {
    if (!sender) {
      const hal = await connect('hal');
      sender = { hal, conversationId: (await hal.ok({ t: 'create', kind: 'direct', peer: 'ivy' })).conversationId };
    }
    return sender;
  };

  it.each([
    ['a well-formed id nobody uploaded', '0'.repeat(64)],
    ['an id in another spelling', 'att_123'],
    ['an upper-case digest', 'A'.repeat(64)],
    ['a path', '../../etc/passwd'],
  ])('answer not_found for %s', async (_name, id) => {
    const { hal, conversationId } = await conversation();
    const reply = await hal.request({
      t: 'send',
      conversationId,
      clientMsgId: `a-${Math.random().toString(36).slice(2)}`,
      text: 'see attached',
      attachments: [id],
    });
    expect(reply).toMatchObject({ t: 'error', code: 'not_found', retryable: false });
    expect(ServerFrame.safeParse(reply).success).toBe(true);
  });
});

describe('dev tokens', () => {
  it('say when they expire in milliseconds, and the terminal keeps one until then', async () => {
    const before = Date.now();
    const res = await api(fx.p.http, 'POST', '/v1/dev/token', undefined, { userId: 'jo', ttlSeconds: 3600 });
    expect(res.status).toBe(200);
    const body = TokenResponse.parse(res.body);
    expect(body.expiresAt).toBeGreaterThanOrEqual(before + 3600_000 - 1000);
    expect(body.expiresAt).toBeLessThanOrEqual(Date.now() + 3600_000 + 1000);

    let minted = 0;
    const token = new TerminalToken(async () => {
      minted++;
      return TokenResponse.parse((await api(fx.p.http, 'POST', '/v1/dev/token', undefined, { userId: 'jo' })).body);
    });
    const first = await token.get();
    for (let i = 0; i < 5; i++) expect(await token.get()).toBe(first);
    expect(minted).toBe(1);
  });
});

describe('token expiry', () => {
  it('closes a connection with 3003 when its token expires (the JWT exp, seconds, read as a time like any other)', async () => {
    const { config } = fx.p.platform.runtime;
    const secret = new TextEncoder().encode(config.auth.jwtSecret!);
    const exp = Math.floor(Date.now() / 1000) + 2;
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('kit')
      .setIssuer(config.auth.issuer)
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign(secret);
    const started = Date.now();
    const ws = new WebSocket(`${fx.p.ws}?token=${token}`);
    const closed = await new Promise<number>((resolve, reject) => {
      ws.on('close', (code) => resolve(code));
      ws.on('error', reject);
    });
    expect(closed).toBe(CloseCode.tokenExpired);
    // At the expiry, not at once and not 1000 times later.
    expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000 - 50);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

it('logged no errors', () => {
  expect(fx.p.errorLogs).toEqual([]);
});
