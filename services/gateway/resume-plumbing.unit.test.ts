import { describe, expect, it } from 'vitest';
import type { ParleyEvent } from '../../contracts/index.js';
import { createLogger } from '../observability/logger.js';
import type { StoredEvent } from '../event-log/event-store.js';
import { CoalescedBounds } from './ws/coalesced-bounds.js';
import { ConcurrencyGate } from './ws/concurrency-gate.js';
import { RecentLog, type RangeReader } from './ws/recent-log.js';

const ALL = 'p.ev.>';

/** A log of `n` events spread over a few subjects, read the way the event store reads it. */
function fakeStore(n: number, deleted: Set<number> = new Set()) {
  const log: StoredEvent[] = [];
  for (let seq = 1; seq <= n; seq++) {
    if (!deleted.has(seq)) log.push({ seq, subject: `p.ev.conv.c${seq % 7}`, event: { seq } as unknown as ParleyEvent });
  }
  const calls: { subjects: string[]; after: number; until: number }[] = [];
  const read = async (subjects: string[], after: number, until: number, limit: number) => {
    calls.push({ subjects, after, until });
    const match = log.filter((e) => e.seq > after && e.seq <= until && (subjects.includes(ALL) || subjects.includes(e.subject)));
    return { events: match.slice(0, limit), truncated: match.length > limit, reached: match.length > limit ? match[limit - 1]!.seq : until };
  };
  // Fills (readAll) are recorded as reads of ALL.
  const store: RangeReader = { readSubjects: read, readAll: (after, until, limit) => read([ALL], after, until, limit) };
  return { store, calls, log };
}

const silent = createLogger({ level: 'error' });

describe('RecentLog', () => {
  it('keeps no range a fill could not read to its end: the read goes to the store, and a later fill covers it', async () => {
    const { store, log } = fakeStore(100);
    let behind = true;
    // A server whose copy of the stream is behind (a former leader cut off) says nothing is pending after 60.
    const shortStore: RangeReader = {
      readSubjects: store.readSubjects,
      readAll: async (after, until, limit) => {
        if (behind && until > 60) throw new Error('the event log answered a read up to sequence 60, not 100');
        return store.readAll(after, until, limit);
      },
    };
    const recent = new RecentLog(shortStore, { capacity: 10_000, maxScan: 5000, scanPerWaiter: 5000, demand: () => 1, idleMs: 60_000 }, silent);
    const want = log.filter((e) => e.subject === 'p.ev.conv.c3' && e.seq > 50).map((e) => e.seq);
    expect((await recent.readSubjects(['p.ev.conv.c3'], 50, 100, 1000)).events.map((e) => e.seq)).toEqual(want);
    expect(recent.held).toBe(0);
    behind = false;
    expect((await recent.readSubjects(['p.ev.conv.c3'], 50, 100, 1000)).events.map((e) => e.seq)).toEqual(want);
    expect(recent.held).toBeGreaterThan(0);
    recent.stop();
  });

  it('answers like the store, and a storm of overlapping reads costs a few fills', async () => {
    const { store, calls, log } = fakeStore(5000, new Set([10, 11, 4000]));
    const recent = new RecentLog(store, { capacity: 10_000, maxScan: 5000, scanPerWaiter: 5000, demand: () => 1, idleMs: 60_000 }, silent);
    const requests = Array.from({ length: 300 }, (_, i) => ({
      subjects: [`p.ev.conv.c${i % 7}`, `p.ev.conv.c${(i + 3) % 7}`],
      after: 3000 + ((i * 37) % 1500),
      until: 4990,
    }));
    const answers = await Promise.all(requests.map((r) => recent.readSubjects(r.subjects, r.after, r.until, 10_000)));
    requests.forEach((r, i) => {
      const expected = log.filter((e) => e.seq > r.after && e.seq <= r.until && r.subjects.includes(e.subject));
      expect(answers[i]!.events.map((e) => e.seq)).toEqual(expected.map((e) => e.seq));
    });
    expect(calls.every((c) => c.subjects[0] === ALL)).toBe(true);
    expect(calls.length).toBeLessThanOrEqual(3);
    // The window now covers the range: a further read costs nothing.
    const before = calls.length;
    await recent.readSubjects(['p.ev.conv.c1'], 3200, 4000, 10);
    expect(calls.length).toBe(before);
  });

  it('truncates at the limit and extends forward as the log grows', async () => {
    const { store, calls } = fakeStore(2000);
    const recent = new RecentLog(store, { capacity: 10_000, maxScan: 5000, scanPerWaiter: 5000, demand: () => 1, idleMs: 60_000 }, silent);
    const first = await recent.readSubjects(['p.ev.conv.c0'], 1000, 1500, 5);
    expect(first).toMatchObject({ truncated: true });
    expect(first.events.map((e) => e.seq)).toEqual([1001, 1008, 1015, 1022, 1029]);
    await recent.readSubjects(['p.ev.conv.c0'], 1400, 2000, 100);
    expect(calls.at(-1)).toMatchObject({ after: 1500, until: 2000 });
  });

  it('sends ranges it cannot hold to the store, filtered there', async () => {
    const { store, calls } = fakeStore(22_000);
    const recent = new RecentLog(store, { capacity: 4000, maxScan: 2000, scanPerWaiter: 2000, demand: () => 1, idleMs: 60_000 }, silent);
    const { events } = await recent.readSubjects(['p.ev.conv.c3'], 100, 19_000, 100_000);
    expect(events.length).toBe(Math.floor((19_000 - 3) / 7) - Math.floor((100 - 3) / 7));
    expect(calls).toEqual([{ subjects: ['p.ev.conv.c3'], after: 100, until: 19_000 }]);
    // Within reach: filled, then older reads grow the window backwards until it would pass its capacity.
    await recent.readSubjects(['p.ev.conv.c3'], 18_000, 19_000, 100);
    await recent.readSubjects(['p.ev.conv.c3'], 17_000, 19_000, 100);
    expect(calls.at(-1)).toMatchObject({ subjects: [ALL], after: 17_000, until: 18_000 });
    expect(recent.held).toBe(2000);
    await recent.readSubjects(['p.ev.conv.c3'], 14_000, 15_900, 100);
    expect(calls.at(-1)).toMatchObject({ subjects: ['p.ev.conv.c3'], after: 14_000, until: 15_900 });
    // Growing forward past the capacity drops the oldest part.
    await recent.readSubjects(['p.ev.conv.c3'], 18_500, 20_000, 100);
    expect(calls.at(-1)).toMatchObject({ subjects: [ALL], after: 19_000, until: 20_000 });
    expect(recent.held).toBe(3000);
    await recent.readSubjects(['p.ev.conv.c3'], 19_500, 21_500, 100);
    expect(recent.held).toBe(3500);
    const kept = await recent.readSubjects(['p.ev.conv.c3'], 18_000, 21_500, 1000);
    expect(kept.events[0]!.seq).toBe(18_007);
    expect(calls.at(-1)).toMatchObject({ after: 20_000, until: 21_500 });
  });

  it('scans widely only when many resumes wait: a lone one reads a long range from the store', async () => {
    const { store, calls } = fakeStore(30_000);
    let waiting = 1;
    const recent = new RecentLog(store, { capacity: 50_000, maxScan: 20_000, scanPerWaiter: 500, demand: () => waiting, idleMs: 60_000 }, silent);
    await recent.readSubjects(['p.ev.conv.c1'], 25_000, 30_000, 100);
    expect(calls.at(-1)).toMatchObject({ subjects: ['p.ev.conv.c1'] });
    await recent.readSubjects(['p.ev.conv.c1'], 29_800, 30_000, 100);
    expect(calls.at(-1)).toMatchObject({ subjects: [ALL], after: 29_800, until: 30_000 });
    waiting = 100;
    recent.clear();
    const before = calls.length;
    // A storm: one fill reaching back to the oldest position waiting (within the budget) serves them all.
    await Promise.all([25_000, 21_000, 27_000, 5_000].map((after) => recent.readSubjects(['p.ev.conv.c1'], after, 30_000, 100)));
    expect(calls.slice(before)).toEqual([
      { subjects: ['p.ev.conv.c1'], after: 5_000, until: 30_000 },
      { subjects: [ALL], after: 21_000, until: 30_000 },
    ]);
  });
});

describe('CoalescedBounds', () => {
  it('answers every caller from a call issued after it asked, with at most one call in flight', async () => {
    let last = 0;
    let calls = 0;
    let inFlight = 0;
    const pending: (() => void)[] = [];
    const bounds = new CoalescedBounds(async () => {
      calls++;
      inFlight++;
      expect(inFlight).toBe(1);
      await new Promise<void>((r) => pending.push(r));
      inFlight--;
      return { firstSeq: 1, lastSeq: last };
    });
    last = 10;
    const a = bounds.read();
    last = 20; // appended after `a` was asked but (as far as anyone can tell) before its call answered
    const b = bounds.read();
    const c = bounds.read();
    pending.shift()!();
    expect((await a).lastSeq).toBe(20);
    await new Promise((r) => setImmediate(r));
    last = 30;
    pending.shift()!();
    // b and c asked while a's call was in flight: they share the next one, which saw 30.
    expect([(await b).lastSeq, (await c).lastSeq]).toEqual([30, 30]);
    expect(calls).toBe(2);
  });
});

describe('ConcurrencyGate', () => {
  it('runs at most `limit` tasks at once, in arrival order, and survives failures', async () => {
    const gate = new ConcurrencyGate(2);
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        gate.run(async () => {
          order.push(i);
          running++;
          peak = Math.max(peak, running);
          await new Promise((r) => setTimeout(r, 2));
          running--;
          if (i === 3) throw new Error('boom');
          return i;
        }),
      ),
    );
    expect(peak).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
    expect(gate.queued).toBe(0);
  });
});
