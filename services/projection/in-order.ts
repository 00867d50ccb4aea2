/**
 * Keeps a durable consumer's deliveries in log order across naks.
 *
 * The checkpoint is one sequence: "everything up to here is handled". A nak
 * with a delay sends a message back to the server while later messages keep
 * arriving; applying those first would move the checkpoint past the naked
 * one, which would then be skipped as already applied. So every naked
 * sequence is remembered as outstanding, and a delivered message is only
 * released once no outstanding sequence is below it. Messages that arrive
 * early wait here (the server's max_ack_pending bounds how many).
 *
 * Fresh deliveries always come in increasing order, so in normal operation
 * (nothing outstanding) every message is released at once.
 */
export class InOrderGate<M extends { seq: number }> {
  private readonly outstanding = new Set<number>();
  private readonly waiting = new Map<number, M>();
  private minOutstanding = Infinity;

  /** A message arrived (first delivery or redelivery). */
  arrive(msg: M): void {
    if (this.outstanding.delete(msg.seq) && msg.seq === this.minOutstanding) this.recomputeMin();
    this.waiting.set(msg.seq, msg);
  }

  /** A message was naked: it will come back, and nothing after it may be released before it does. */
  expect(seq: number): void {
    this.waiting.delete(seq);
    this.outstanding.add(seq);
    if (seq < this.minOutstanding) this.minOutstanding = seq;
  }

  /** Messages that may be applied now, in sequence order, removed from the gate. */
  release(limit = Infinity): M[] {
    if (this.waiting.size === 0) return [];
    const ready: M[] = [];
    const seqs = this.outstanding.size === 0 && this.waiting.size === 1 ? [...this.waiting.keys()] : [...this.waiting.keys()].sort((a, b) => a - b);
    for (const seq of seqs) {
      if (seq > this.minOutstanding || ready.length >= limit) break;
      ready.push(this.waiting.get(seq)!);
      this.waiting.delete(seq);
    }
    return ready;
  }

  /** True while some naked message has not come back. */
  get recovering(): boolean {
    return this.outstanding.size > 0;
  }

  /** Messages held back because an earlier one is outstanding. */
  get held(): M[] {
    return [...this.waiting.values()];
  }

  get size(): number {
    return this.waiting.size;
  }

  private recomputeMin(): void {
    this.minOutstanding = Infinity;
    for (const s of this.outstanding) if (s < this.minOutstanding) this.minOutstanding = s;
  }
}
