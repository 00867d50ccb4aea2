/**
 * Token buckets: `ratePerSecond` sustained with bursts up to `burst`. Each
 * take() says how long to wait when empty, so errors can carry retryAfterMs.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Takes one token; returns 0 when allowed, otherwise the milliseconds until one is available. */
  take(): number {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.ratePerSecond);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) / this.ratePerSecond) * 1000);
  }
}

/** One bucket per key (user), created on demand and forgotten after being idle and full again. */
export class KeyedRateLimiter {
  private readonly buckets = new Map<string, { bucket: TokenBucket; lastUsed: number }>();

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {}

  take(key: string): number {
    const now = this.now();
    let entry = this.buckets.get(key);
    if (!entry) {
      entry = { bucket: new TokenBucket(this.ratePerSecond, this.burst, this.now), lastUsed: now };
      this.buckets.set(key, entry);
      if (this.buckets.size > 100_000) this.sweep(now);
    }
    entry.lastUsed = now;
    return entry.bucket.take();
  }

  private sweep(now: number): void {
    const idleMs = (this.burst / this.ratePerSecond) * 1000;
    for (const [k, v] of this.buckets) if (now - v.lastUsed > idleMs) this.buckets.delete(k);
  }
}
