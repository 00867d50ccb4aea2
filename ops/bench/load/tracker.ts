/**
 * What one receiving connection got: distinct bench messages per sender in a
 * growable bitset (counters are small dense integers), so duplicates are
 * caught exactly and losses are "expected minus distinct".
 */
export class ReceiveTracker {
  private readonly seen = new Map<number, Uint8Array>();
  distinct = 0;
  duplicates = 0;

  /** Returns false for a duplicate. */
  add(sender: number, counter: number): boolean {
    let bits = this.seen.get(sender);
    const byte = counter >>> 3;
    if (!bits || byte >= bits.length) {
      const grown = new Uint8Array(Math.max(64, (byte + 1) * 2));
      if (bits) grown.set(bits);
      this.seen.set(sender, (bits = grown));
    }
    const mask = 1 << (counter & 7);
    if (bits[byte]! & mask) {
      this.duplicates++;
      return false;
    }
    bits[byte]! |= mask;
    this.distinct++;
    return true;
  }

  /** Counts start again for the next measured phase; the bitsets stay (counters keep rising). */
  resetCounts(): void {
    this.distinct = 0;
    this.duplicates = 0;
  }
}
