import { describe, expect, it } from 'vitest';
import { DeliveryGap, DeliverySequence } from './delivery-sequence.js';

describe('DeliverySequence', () => {
  it('accepts consecutive deliveries from where the session opened, redeliveries included', () => {
    const d = new DeliverySequence(41);
    // Stream sequences may go back (a naked event redelivered): only the consumer's delivery count must be whole.
    for (const [delivery, seq] of [
      [42, 100],
      [43, 101],
      [44, 100],
      [45, 102],
    ] as const)
      d.next(delivery, seq);
  });

  it.each([
    ['a delivery taken by a stale pull of a former holder', 0, [1, 3]],
    ['the first delivery of the session went elsewhere', 10, [12]],
    ['a repeated delivery number', 5, [6, 6]],
    ['a number from before the session', 5, [4]],
  ])('stops at a hole: %s', (_what, opened, deliveries) => {
    const d = new DeliverySequence(opened);
    const last = deliveries.at(-1)!;
    for (const n of deliveries.slice(0, -1)) d.next(n, n + 100);
    expect(() => d.next(last, 7)).toThrow(DeliveryGap);
  });
});
