import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../services/runtime/errors.js';
import { WrongLastSequence } from '../services/event-log/event-store.js';
import { StreamPublisher } from '../services/event-log/stream-publisher.js';
import { created, sent } from './support/events.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';

/**
 * Appends go through Parley's own publisher (services/event-log/stream-publisher.ts),
 * not the client library's request path: the stream's answers, refusals,
 * silence and absence must each come back as what the write side expects.
 */
let p: TestPlatform;

beforeAll(async () => {
  p = await startTestPlatform({ withWorkers: false });
});
afterAll(async () => {
  await p?.stop();
});

describe('appends to the stream', () => {
  it('are stored in order, conditional on the subject, and deduplicated by id', async () => {
    const { store, subjects } = p.platform.runtime;
    const subject = subjects.conv('g_pub');
    const first = await store.append(subject, created('g_pub', ['ann', 'bob']), { expectedLastSubjectSeq: 0 });
    expect(first).toMatchObject({ duplicate: false });
    const message = sent('g_pub', 'ann', 'hello');
    const second = await store.append(subject, message, { expectedLastSubjectSeq: first.seq, msgId: 'once' });
    expect(second.seq).toBeGreaterThan(first.seq);
    // The same dedup id again: the original's sequence, nothing stored.
    expect(await store.append(subject, message, { expectedLastSubjectSeq: second.seq, msgId: 'once' })).toEqual({ seq: second.seq, duplicate: true });
    // Decided on a state that has moved on: refused as a lost race, so the caller reloads.
    await expect(store.append(subject, sent('g_pub', 'bob', 'stale'), { expectedLastSubjectSeq: first.seq })).rejects.toBeInstanceOf(WrongLastSequence);
    expect(await store.lastSubjectSeq(subject)).toBe(second.seq);
  });

  it('many at once each get their own answer', async () => {
    const { store, subjects } = p.platform.runtime;
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => store.append(subjects.conv(`g_many_${i}`), created(`g_many_${i}`, ['ann']), { expectedLastSubjectSeq: 0 })),
    );
    expect(new Set(results.map((r) => r.seq)).size).toBe(300);
    for (let i = 0; i < 300; i += 37) expect((await store.getOn(subjects.conv(`g_many_${i}`), results[i]!.seq))?.subject).toBe(subjects.conv(`g_many_${i}`));
  });

  it('fail as unavailable when no stream takes the subject, or nobody answers in time', async () => {
    const nc = p.platform.runtime.nats.nc;
    const publisher = new StreamPublisher(nc, 300);
    try {
      const data = new TextEncoder().encode('{}');
      const noStream = publisher.publish(`${p.namespace}.nowhere.${Date.now()}`, data, { expectedStream: 'none' });
      await expect(noStream).rejects.toBeInstanceOf(AppError);
      await expect(noStream).rejects.toMatchObject({ code: 'unavailable' });
      // Something listens but never answers: the sweep gives up after the timeout.
      const silent = nc.subscribe(`${p.namespace}.silent`);
      const started = performance.now();
      await expect(publisher.publish(`${p.namespace}.silent`, data, { expectedStream: 'none' })).rejects.toMatchObject({ code: 'unavailable' });
      expect(performance.now() - started).toBeGreaterThanOrEqual(290);
      silent.unsubscribe();
    } finally {
      publisher.close();
    }
  });
});
