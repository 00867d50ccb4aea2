/**
 * At most `limit` tasks run at once; the rest wait in arrival order.
 *
 * Why for resumes: each one holds Postgres and JetStream requests open. A
 * reconnect storm started them all at once, every one of them slowed every
 * other past the server timeouts, clients retried, and the storm never
 * cleared. Queued, each resume finishes quickly and frees its slot.
 */
export class ConcurrencyGate {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  get queued(): number {
    return this.waiting.length;
  }

  /** Tasks running or waiting. */
  get demand(): number {
    return this.running + this.waiting.length;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running++;
    try {
      return await task();
    } finally {
      // The slot passes straight to the next waiter, so `running` never dips while some wait.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
