/**
 * 64-bit time-ordered ids (the layout from the design notes): 41 bits of
 * milliseconds since PARLEY_EPOCH, 10 bits of node id, 12 bits of sequence
 * within the millisecond. Sortable by creation time across nodes and shards,
 * unique as long as node ids are unique among running writers.
 */
export const PARLEY_EPOCH_MS = Date.UTC(2024, 0, 1);
const NODE_BITS = 10n;
const SEQ_BITS = 12n;
const MAX_SEQ = (1n << SEQ_BITS) - 1n;

export interface SnowflakeParts {
  timeMs: number;
  nodeId: number;
  sequence: number;
}

export class SnowflakeGenerator {
  private lastMs = -1;
  private seq = 0n;

  constructor(
    private readonly nodeId: number,
    private readonly now: () => number = Date.now,
    /** Throws when this process may not mint with `nodeId` right now (its lease is not held: services/leases/node-id-lease.ts). */
    private readonly assertMayMint: () => void = () => undefined,
  ) {
    if (!Number.isInteger(nodeId) || nodeId < 0 || nodeId > 1023) throw new RangeError('node id must be 0..1023');
  }

  next(): string {
    this.assertMayMint();
    let ms = Math.max(this.now(), this.lastMs); // never go backwards when the clock does
    if (ms === this.lastMs) {
      this.seq = (this.seq + 1n) & MAX_SEQ;
      if (this.seq === 0n) ms = this.lastMs + 1; // sequence exhausted: borrow the next millisecond
    } else {
      this.seq = 0n;
    }
    this.lastMs = ms;
    const id = (BigInt(ms - PARLEY_EPOCH_MS) << (NODE_BITS + SEQ_BITS)) | (BigInt(this.nodeId) << SEQ_BITS) | this.seq;
    return id.toString();
  }
}

export function parseSnowflake(id: string): SnowflakeParts {
  const n = BigInt(id);
  return {
    timeMs: Number(n >> (NODE_BITS + SEQ_BITS)) + PARLEY_EPOCH_MS,
    nodeId: Number((n >> SEQ_BITS) & ((1n << NODE_BITS) - 1n)),
    sequence: Number(n & MAX_SEQ),
  };
}
