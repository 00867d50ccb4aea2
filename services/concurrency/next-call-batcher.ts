/**
 * Answers many concurrent lookups with few calls, each lookup from a call
 * issued *after* it was asked: at most `maxInFlight` calls run at once;
 * lookups arriving meanwhile are gathered and answered together by the next
 * call, started as soon as one returns.
 *
 * Why "after it was asked": callers use the answer as a barrier (a resume
 * reads the stream's last sequence after registering its live buffers), so a
 * call already under way cannot answer a newer request. Why batch at all: a
 * reconnect storm makes thousands of identical round trips at once otherwise.
 */
export class NextCallBatcher<K, V> {
  private inFlight = 0;
  private waiting = new Map<K, { resolve: (v: V) => void; reject: (e: unknown) => void }[]>();

  constructor(
    /** Answers every key it is given (a missing key is answered with `undefined` → the fallback). */
    private readonly fetch: (keys: K[]) => Promise<Map<K, V>>,
    private readonly fallback: (key: K) => V,
    private readonly maxBatch = 1000,
    /** Calls in flight at once (each with the lookups gathered before it started). */
    private readonly maxInFlight = 1,
  ) {}

  load(key: K): Promise<V> {
    return new Promise<V>((resolve, reject) => {
      const list = this.waiting.get(key);
      if (list) list.push({ resolve, reject });
      else this.waiting.set(key, [{ resolve, reject }]);
      if (this.inFlight < this.maxInFlight) this.next();
    });
  }

  private next(): void {
    if (this.waiting.size === 0) return;
    const batch = new Map<K, { resolve: (v: V) => void; reject: (e: unknown) => void }[]>();
    for (const [key, list] of this.waiting) {
      if (batch.size >= this.maxBatch) break;
      batch.set(key, list);
    }
    for (const key of batch.keys()) this.waiting.delete(key);
    this.inFlight++;
    this.fetch([...batch.keys()])
      .then(
        (answers) => {
          for (const [key, list] of batch) {
            const value = answers.has(key) ? answers.get(key)! : this.fallback(key);
            for (const w of list) w.resolve(value);
          }
        },
        (err) => {
          for (const list of batch.values()) for (const w of list) w.reject(err);
        },
      )
      .finally(() => {
        this.inFlight--;
        this.next();
      });
  }
}
