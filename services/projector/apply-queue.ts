/**
 * Applies batches one at a time, in the order they were pushed, while the
 * caller goes on receiving and decoding the next ones: the caller only
 * waits when `maxWaiting` batches are already queued behind the one being
 * applied. A failed batch fails every later one and the next push (or
 * `drained`), so nothing is applied past a failure.
 */
export class ApplyQueue<B> {
  private tail: Promise<void> = Promise.resolve();
  private readonly pending: Promise<void>[] = [];

  constructor(
    private readonly apply: (batch: B) => Promise<void>,
    private readonly maxWaiting: number,
  ) {}

  async push(batch: B): Promise<void> {
    this.tail = this.tail.then(() => this.apply(batch));
    // Awaited later (push or drained); this only keeps it from counting as unhandled meanwhile.
    this.tail.catch(() => undefined);
    this.pending.push(this.tail);
    while (this.pending.length > this.maxWaiting + 1) await this.pending.shift();
  }

  /** Resolves when every pushed batch is applied; rejects with the first failure. */
  async drained(): Promise<void> {
    await this.tail;
    this.pending.length = 0;
  }
}
