import { describe, expect, it } from 'vitest';
import { decodePosition, subjectsFor } from '../../contracts/index.js';
import { createLogger } from '../observability/logger.js';
import type { StoredEvent } from '../event-log/event-store.js';
import { LiveHub } from './ws/live-hub.js';

type Callback = (err: Error | null, msg: { subject: string; data: Uint8Array; headers: { get(k: string): string } }) => void;

function fakeNats() {
  const subs = new Map<string, Callback>();
  return {
    subs,
    subscribe(subject: string, opts: { callback: Callback }) {
      subs.set(subject, opts.callback);
      return { unsubscribe: () => subs.delete(subject) };
    },
  };
}

/** A hub over one shard of namespace `ns`, with the test's publisher and gap source. */
function oneShardHub(
  nc: ReturnType<typeof fakeNats>,
  publish: ConstructorParameters<typeof LiveHub>[3],
  gapSource: ConstructorParameters<typeof LiveHub>[4],
): LiveHub {
  return new LiveHub(nc as never, subjectsFor('ns'), [{ shard: 0, stream: 's', epoch: 'e' }], publish, gapSource, createLogger({ level: 'silent' }));
}

const event = (text: string) => ({ type: 'message.sent', v: 1, at: 1, actor: 'a', data: { conversationId: 'g_1', messageId: '1', clientMsgId: text, text } });
const live = (seq: number, prev: number, text: string) => ({
  subject: 'ns.live.conv.g_1',
  data: new TextEncoder().encode(JSON.stringify(event(text))),
  headers: { get: (k: string) => (k === 'Nats-Sequence' ? String(seq) : k === 'Nats-Last-Sequence' ? String(prev) : '') },
});

describe('live hub continuity', () => {
  it('repairs a gap from the log before delivering anything newer, and drops duplicates', async () => {
    const nc = fakeNats();
    const published: { seq: number; prevSeq: number | null; text: string }[] = [];
    const stored: StoredEvent[] = [
      { seq: 12, subject: 'ns.ev.conv.g_1', event: event('twelve') as never },
      { seq: 15, subject: 'ns.ev.conv.g_1', event: event('fifteen') as never },
    ];
    let repairs = 0;
    const hub = oneShardHub(
      nc,
      (_topic, frame) => {
        const f = JSON.parse(frame);
        published.push({ seq: f.seq, prevSeq: f.prevSeq, text: f.event.data.text });
      },
      async (_subject, after, until) => {
        repairs++;
        await new Promise((r) => setTimeout(r, 20));
        return stored.filter((e) => e.seq > after && e.seq <= until);
      },
    );
    hub.acquire('conv', 'g_1');
    const deliver = nc.subs.get('ns.live.conv.g_1')!;
    deliver(null, live(10, 7, 'ten'));
    deliver(null, live(20, 15, 'twenty')); // 12 and 15 were lost on the way
    deliver(null, live(21, 20, 'twenty-one')); // arrives during the repair: must wait
    deliver(null, live(21, 20, 'twenty-one')); // duplicate
    await new Promise((r) => setTimeout(r, 60));
    expect(repairs).toBe(1);
    expect(published.map((p) => p.seq)).toEqual([10, 12, 15, 20, 21]);
    expect(published.map((p) => p.text)).toEqual(['ten', 'twelve', 'fifteen', 'twenty', 'twenty-one']);
    expect(published[1]).toMatchObject({ prevSeq: 10 });
    expect(hub.gapsRepaired).toBe(1);
  });

  it('keeps newer events behind a gap while the log refuses the repair read, and repairs it once the log answers', async () => {
    const nc = fakeNats();
    const published: number[] = [];
    const stored: StoredEvent[] = [{ seq: 12, subject: 'ns.ev.conv.g_1', event: event('twelve') as never }];
    let attempts = 0;
    const hub = oneShardHub(
      nc,
      (_topic, frame) => published.push(JSON.parse(frame).seq),
      async (_subject, after, until) => {
        // A cluster between leaders: the first two reads are refused.
        if (++attempts <= 2) throw new Error('the event log stopped answering a read');
        return stored.filter((e) => e.seq > after && e.seq <= until);
      },
    );
    hub.acquire('conv', 'g_1');
    const deliver = nc.subs.get('ns.live.conv.g_1')!;
    deliver(null, live(10, 7, 'ten'));
    deliver(null, live(13, 12, 'thirteen')); // 12 was lost on the way
    deliver(null, live(14, 13, 'fourteen'));
    await new Promise((r) => setTimeout(r, 100));
    // Nothing newer than the gap went out while the repair failed.
    expect(published).toEqual([10]);
    for (let i = 0; i < 40 && published.length < 4; i++) await new Promise((r) => setTimeout(r, 50));
    expect(attempts).toBe(3);
    expect(published).toEqual([10, 12, 13, 14]);
    expect(hub.gapsRepaired).toBe(1);
  });

  it('delivers past a gap the log cannot fill (an unreadable or tombstoned event), repairing it once', async () => {
    const nc = fakeNats();
    const published: { seq: number; prevSeq: number }[] = [];
    let repairs = 0;
    const hub = oneShardHub(
      nc,
      (_topic, frame) => {
        const f = JSON.parse(frame);
        published.push({ seq: f.seq, prevSeq: f.prevSeq });
      },
      async () => {
        repairs++;
        return []; // seq 11 exists but no reader can read it
      },
    );
    hub.acquire('conv', 'g_1');
    const deliver = nc.subs.get('ns.live.conv.g_1')!;
    deliver(null, live(10, 7, 'ten'));
    deliver(null, live(12, 11, 'twelve'));
    deliver(null, live(13, 12, 'thirteen'));
    await new Promise((r) => setTimeout(r, 20));
    expect(repairs).toBe(1);
    // Frames keep the log's prevSeq, so a device sees the hole and resumes past it.
    expect(published).toEqual([
      { seq: 10, prevSeq: 7 },
      { seq: 12, prevSeq: 11 },
      { seq: 13, prevSeq: 12 },
    ]);
  });

  it("leaves typing out of the typist's own sockets and buffers, and sends receipts to everyone", () => {
    const nc = fakeNats();
    const toAll: string[] = [];
    const except: { frame: string; user: string }[] = [];
    const hub = oneShardHub(
      nc,
      (_t, frame) => toAll.push(frame),
      async () => [],
    );
    hub.publishExcept = (_topic, frame, user) => (except.push({ frame, user }), true);
    const topic = hub.acquire('conv', 'g_1');
    const mine: string[] = [];
    const theirs: string[] = [];
    hub.addSink(topic, { userId: 'amy', push: (_k, _s, f) => mine.push(f) });
    hub.addSink(topic, { userId: 'bob', push: (_k, _s, f) => theirs.push(f) });
    const eph = nc.subs.get('ns.eph.conv.g_1')!;
    const typing = JSON.stringify({ t: 'typing', conversationId: 'g_1', userId: 'amy', expiresAt: 1 });
    const receipt = JSON.stringify({ t: 'receipt', conversationId: 'g_1', userId: 'amy', kind: 'read', seq: 3 });
    eph(null, { subject: 'ns.eph.conv.g_1', data: new TextEncoder().encode(typing), headers: { get: (k: string) => (k === 'Parley-Sender' ? 'amy' : '') } });
    eph(null, { subject: 'ns.eph.conv.g_1', data: new TextEncoder().encode(receipt), headers: { get: () => '' } });
    expect(except).toEqual([{ frame: typing, user: 'amy' }]);
    expect(toAll).toEqual([receipt]);
    expect(mine).toEqual([receipt]);
    expect(theirs).toEqual([typing, receipt]);
  });

  it('never delivers a live event that cannot be read (published around the write side), and keeps going', async () => {
    const nc = fakeNats();
    const published: number[] = [];
    let repairs = 0;
    const hub = oneShardHub(
      nc,
      (_t, frame) => published.push(JSON.parse(frame).seq),
      async () => (repairs++, []),
    );
    hub.acquire('conv', 'g_1');
    const deliver = nc.subs.get('ns.live.conv.g_1')!;
    const raw = (seq: number, prev: number, body: string) => ({
      subject: 'ns.live.conv.g_1',
      data: new TextEncoder().encode(body),
      headers: { get: (k: string) => (k === 'Nats-Sequence' ? String(seq) : k === 'Nats-Last-Sequence' ? String(prev) : '') },
    });
    deliver(null, live(10, 7, 'ten'));
    deliver(null, raw(11, 10, 'not json {'));
    deliver(null, raw(12, 11, JSON.stringify({ type: 'message.sent', v: 1, at: 1, actor: 'm', data: { conversationId: 'g_1', text: 42 } })));
    deliver(null, live(13, 12, 'thirteen'));
    await new Promise((r) => setTimeout(r, 20));
    expect(published).toEqual([10, 13]);
    expect(repairs).toBe(0);
  });

  it("gives each frame the position of the shard its Nats-Stream header names, and repairs from the entity's shard", async () => {
    const nc = fakeNats();
    const subjects = subjectsFor('ns', 2);
    // An id on shard 1, so its stored subject and its stream are shard 1's.
    const id = ['g_1', 'g_2', 'g_3', 'g_4', 'g_5'].find((c) => subjects.shardOf(c) === 1)!;
    const frames: { seq: number; pos: string }[] = [];
    const sunk: [number, number][] = [];
    const repairs: string[] = [];
    const hub = new LiveHub(
      nc as never,
      subjects,
      [
        { shard: 0, stream: 'ns_events_0', epoch: 'e0' },
        { shard: 1, stream: 'ns_events_1', epoch: 'e1' },
      ],
      (_t, frame) => frames.push(JSON.parse(frame)),
      async (subject, after, until) => {
        repairs.push(`${subject} ${after}..${until}`);
        return [{ seq: 8, subject, event: event('eight') as never }];
      },
      createLogger({ level: 'silent' }),
    );
    const topic = hub.acquire('conv', id);
    hub.addSink(topic, { push: (k, s) => sunk.push([k, s]) });
    const deliver = nc.subs.get(`ns.live.conv.${id}`)!;
    const msg = (seq: number, prev: number, stream: string) => ({
      subject: `ns.live.conv.${id}`,
      data: new TextEncoder().encode(JSON.stringify(event(String(seq)))),
      headers: { get: (k: string) => ({ 'Nats-Sequence': String(seq), 'Nats-Last-Sequence': String(prev), 'Nats-Stream': stream })[k] ?? '' },
    });
    deliver(null, msg(5, 0, 'ns_events_1'));
    deliver(null, msg(9, 8, 'ns_events_1')); // 8 was lost: read from shard 1's subject
    deliver(null, msg(10, 9, 'other_stream')); // no shard of this log: not delivered
    await new Promise((r) => setTimeout(r, 20));
    expect(repairs).toEqual([`${subjects.conv(id)} 5..8`]);
    expect(subjects.conv(id)).toBe(`ns.ev.1.conv.${id}`);
    expect(frames.map((f) => f.seq)).toEqual([5, 8, 9]);
    expect(frames.map((f) => decodePosition(f.pos))).toEqual([5, 8, 9].map((seq) => [{ shard: 1, epoch: 'e1', seq }]));
    expect(sunk).toEqual([
      [1, 5],
      [1, 8],
      [1, 9],
    ]);
  });
});
