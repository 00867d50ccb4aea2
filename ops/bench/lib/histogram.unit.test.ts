import { describe, expect, it } from 'vitest';
import { Histogram } from './histogram.js';
import { parseFigures } from '../scenarios/external.js';
import { parseFrameBytes, parsed, benchText } from '../load/payload.js';
import { ReceiveTracker } from '../load/tracker.js';

describe('bench histogram', () => {
  it('reports percentiles within 1% and never below the true value', () => {
    const h = new Histogram();
    const values = Array.from({ length: 100_000 }, (_, i) => 1 + ((i * 7919) % 2_000_000));
    values.forEach((v) => h.record(v));
    const sorted = [...values].sort((a, b) => a - b);
    for (const p of [50, 90, 99, 99.9]) {
      const exact = sorted[Math.ceil((p / 100) * sorted.length) - 1]!;
      expect(h.percentile(p)).toBeGreaterThanOrEqual(exact);
      expect(h.percentile(p)).toBeLessThanOrEqual(exact * 1.01);
    }
    expect(h.max).toBe(sorted.at(-1));
  });

  it('merges snapshots from several processes into the same distribution', () => {
    const a = new Histogram();
    const b = new Histogram();
    const all = new Histogram();
    for (let i = 0; i < 10_000; i++) {
      (i % 2 ? a : b).record(i * 3);
      all.record(i * 3);
    }
    const merged = Histogram.from([a.snapshot(), b.snapshot()]);
    expect(merged.count).toBe(all.count);
    expect(merged.percentile(99)).toBe(all.percentile(99));
    expect(merged.min).toBe(0);
  });
});

describe('bench message parsing', () => {
  it('reads sender, counter and send time from a raw event frame', () => {
    const text = benchText(42, 7);
    const frame = Buffer.from(`{"t":"event","seq":3,"event":{"type":"message.sent","data":{"text":${JSON.stringify(text)}}}}`);
    expect(parseFrameBytes(frame)).toBe(true);
    expect([parsed.sender, parsed.counter]).toEqual([42, 7]);
    expect(parsed.sentAt).toBeGreaterThan(1e15);
  });

  it('counts duplicates exactly', () => {
    const t = new ReceiveTracker();
    expect([t.add(1, 5), t.add(1, 5), t.add(1, 6000), t.add(2, 5)]).toEqual([true, false, true, true]);
    expect([t.distinct, t.duplicates]).toEqual([3, 1]);
  });

  it('takes figures from the separate scripts’ output lines', () => {
    expect(
      parseFigures(['rebuild replay (ordered consumer): 2050 events in 1.52 s = 1351 events/s', 'ingested 5000 events in 3.48 s: 1,436 events/s']),
    ).toEqual([
      { label: 'rebuild replay (ordered consumer)', perSecond: 1351, unit: 'events' },
      { label: 'ingested 5000 events in 3.48 s', perSecond: 1436, unit: 'events' },
    ]);
  });
});
