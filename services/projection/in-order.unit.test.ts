import { describe, expect, it } from 'vitest';
import { InOrderGate } from './in-order.js';

const m = (seq: number) => ({ seq });
const seqs = (ms: { seq: number }[]) => ms.map((x) => x.seq);

describe('in-order gate for naked deliveries', () => {
  it('releases everything at once while nothing is outstanding', () => {
    const g = new InOrderGate<{ seq: number }>();
    [3, 4, 7].forEach((s) => g.arrive(m(s)));
    expect(seqs(g.release())).toEqual([3, 4, 7]);
    expect(g.release()).toEqual([]);
  });

  it('holds later deliveries until every naked one is back, then releases in sequence order', () => {
    const g = new InOrderGate<{ seq: number }>();
    g.expect(10);
    g.expect(11);
    g.arrive(m(12)); // a fresh delivery overtaking the naked ones
    g.arrive(m(11)); // a redelivery, but 10 is still out
    expect(g.release()).toEqual([]);
    expect(g.recovering).toBe(true);
    g.arrive(m(10));
    expect(g.recovering).toBe(false);
    expect(seqs(g.release(2))).toEqual([10, 11]);
    expect(seqs(g.release())).toEqual([12]);
  });

  it('releases what is below the lowest outstanding sequence', () => {
    const g = new InOrderGate<{ seq: number }>();
    g.arrive(m(5));
    g.arrive(m(6));
    g.expect(6); // 6 failed and was naked again
    expect(seqs(g.release())).toEqual([5]);
    g.arrive(m(8));
    expect(g.release()).toEqual([]);
    expect(seqs(g.held)).toEqual([8]);
  });
});
