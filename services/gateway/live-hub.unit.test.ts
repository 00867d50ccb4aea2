import { describe, expect, it } from 'vitest';
import { subjectsFor } from '../../contracts/index.js';
import { createLogger } from '../shared/logger.js';
import type { StoredEvent } from '../shared/nats/event-store.js';
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
    const hub = new LiveHub(
      nc as never,
      subjectsFor('ns'),
      { shard: 0, stream: 's', epoch: 'e' },
      (_topic, frame) => {
        const f = JSON.parse(frame);
        published.push({ seq: f.seq, prevSeq: f.prevSeq, text: f.event.data.text });
      },
      async (_subject, after, until) => {
        repairs++;
        await new Promise((r) => setTimeout(r, 20));
        return stored.filter((e) => e.seq > after && e.seq <= until);
      },
      createLogger({ level: 'silent' }),
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
});
