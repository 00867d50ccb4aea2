import { expect, it } from 'vitest';
import { EventFrame } from '../contracts/index.js';
import { appendRaw } from './support/events.js';
import { usePlatform } from './support/fixture.js';

/**
 * Every event frame carries an event of the contracts (docs/reference.md),
 * also when something was published to the log around the write side: such
 * an event is never delivered live, as resumes leave it out too.
 */
const fx = usePlatform();

it('never pushes a live frame around an event that cannot be read, and delivers what follows', async () => {
  const lea = await fx.connect('lea');
  const g = await lea.ok({ t: 'create', kind: 'group', title: 'poisoned', members: ['max'] });
  const max = await fx.connect('max');
  const rt = fx.p.platform.runtime;
  const subject = rt.subjects.conv(g.conversationId);
  // The test client parses every frame: a frame that is not JSON would fail this file outright.
  const poison = [
    await appendRaw(rt, subject, 'not json {'),
    await appendRaw(rt, subject, { type: 'message.sent', v: 1, at: Date.now(), actor: 'mallory', data: { conversationId: g.conversationId, text: 42 } }),
  ];
  expect((await lea.send(g.conversationId, 'after the poison')).t).toBe('ack');
  await Promise.all([lea, max].map((c) => c.message(g.conversationId, 'after the poison')));
  for (const c of [lea, max]) {
    const events = c.frames.filter((f) => f.t === 'event');
    expect(events.filter((f) => poison.includes(f.seq))).toEqual([]);
    for (const f of events) expect(EventFrame.safeParse(f).success, JSON.stringify(f)).toBe(true);
  }
  // (The projectors and the reactor log what they cannot read as errors: docs/operations.md, "Unreadable events".)
});
