/**
 * A log-linear latency histogram (HDR-style, ~0.8% precision) over integer
 * microseconds. Small enough to ship between processes as sparse pairs and
 * merge by addition, which is why it is ours rather than a dependency:
 * every load process records locally and the runner merges.
 */
const SUB_BITS = 8;
const SUB = 1 << SUB_BITS;
const HALF = SUB >> 1;
const MAX_VALUE = 2 ** 31 - 1;
const SIZE = SUB + (31 - SUB_BITS + 1) * HALF;

function indexOf(v: number): number {
  if (v < SUB) return v;
  const msb = 31 - Math.clz32(v);
  const shift = msb - SUB_BITS + 1;
  return SUB + (shift - 1) * HALF + ((v >>> shift) - HALF);
}

/** The highest value a bucket stands for (reported percentiles never flatter). */
function upperOf(index: number): number {
  if (index < SUB) return index;
  const shift = Math.floor((index - SUB) / HALF) + 1;
  const sub = ((index - SUB) % HALF) + HALF;
  return ((sub + 1) << shift) - 1;
}

export interface HistogramSnapshot {
  /** Sparse [bucket, count] pairs. */
  buckets: [number, number][];
  count: number;
  sum: number;
  min: number;
  max: number;
}

export class Histogram {
  private counts = new Float64Array(SIZE);
  count = 0;
  sum = 0;
  min = Infinity;
  max = 0;

  record(valueUs: number): void {
    const v = Math.max(0, Math.min(MAX_VALUE, Math.round(valueUs)));
    this.counts[indexOf(v)]!++;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = 0;
  }

  merge(s: HistogramSnapshot): void {
    for (const [i, c] of s.buckets) this.counts[i]! += c;
    this.count += s.count;
    this.sum += s.sum;
    if (s.count > 0) {
      this.min = Math.min(this.min, s.min);
      this.max = Math.max(this.max, s.max);
    }
  }

  /** Value (µs) at or below which `p` percent of the recorded values fall. */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < SIZE; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(upperOf(i), this.max);
    }
    return this.max;
  }

  snapshot(): HistogramSnapshot {
    const buckets: [number, number][] = [];
    this.counts.forEach((c, i) => {
      if (c > 0) buckets.push([i, c]);
    });
    return { buckets, count: this.count, sum: this.sum, min: this.count ? this.min : 0, max: this.max };
  }

  static from(snapshots: HistogramSnapshot[]): Histogram {
    const h = new Histogram();
    for (const s of snapshots) h.merge(s);
    return h;
  }

  /** Milliseconds summary for reports. */
  summaryMs(): { count: number; p50: number; p90: number; p99: number; p999: number; max: number; mean: number } {
    const ms = (us: number) => Math.round(us) / 1000;
    return {
      count: this.count,
      p50: ms(this.percentile(50)),
      p90: ms(this.percentile(90)),
      p99: ms(this.percentile(99)),
      p999: ms(this.percentile(99.9)),
      max: ms(this.max),
      mean: this.count ? ms(this.sum / this.count) : 0,
    };
  }
}

/** Wall-clock microseconds comparable across processes of one machine (sender stamps, receiver subtracts). */
export function nowMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}
