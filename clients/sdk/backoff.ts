export interface BackoffOptions {
  /** First retry delay ceiling, ms (default 250). */
  baseMs?: number;
  /** Largest delay ceiling, ms (default 30 000). */
  maxMs?: number;
}

/**
 * Exponential backoff with full jitter: a uniformly random delay up to
 * min(max, base * 2^attempt). Jitter spreads a reconnect storm after a
 * gateway restart instead of synchronising every client on the same beat.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const base = options.baseMs ?? 250;
  const max = options.maxMs ?? 30_000;
  const ceiling = Math.min(max, base * 2 ** Math.min(attempt, 20));
  return Math.floor(random() * ceiling);
}
