import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff.js';

describe('backoff with full jitter', () => {
  it('stays within an exponentially growing, capped ceiling and is random within it', () => {
    for (let attempt = 0; attempt < 30; attempt++) {
      const ceiling = Math.min(30_000, 250 * 2 ** attempt);
      expect(backoffDelay(attempt, {}, () => 0)).toBe(0);
      expect(backoffDelay(attempt, {}, () => 0.999999)).toBeLessThanOrEqual(ceiling);
      expect(backoffDelay(attempt, {}, () => 0.999999)).toBeGreaterThanOrEqual(Math.floor(ceiling * 0.99));
    }
    const samples = new Set(Array.from({ length: 50 }, () => backoffDelay(5)));
    expect(samples.size).toBeGreaterThan(10);
  });
});
