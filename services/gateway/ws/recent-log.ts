import type { Logger } from '../../observability/logger.js';
import { guarded } from '../guard.js';
import type { RangeRead, StoredEvent } from '../../event-log/event-store.js';

/** Reads events on some subjects in a sequence range: the event store, or the recent log in front of it. */
export interface EventReader {
  readSubjects(subjects: string[], afterSeq: number, untilSeq: number, limit: number): Promise<RangeRead>;
}

/** The store behind the recent log: filtered reads, and whole ranges of the stream for fills. */
export interface RangeReader extends EventReader {
  readAll(afterSeq: number, untilSeq: number, limit: number): Promise<RangeRead>;
}

export interface RecentLogOptions {
  /** Most events held in memory (whole stream, every subject). */
  capacity: number;
  /** Longest range one fill reads; older or longer requests go to the store. */
  maxScan: number;
  /**
   * Sequences a fill may scan per resume waiting (see `demand`): a lone resume
   * reads a long range more cheaply from the store, filtered by the server,
   * than by decoding every event of it here.
   */
  scanPerWaiter: number;
  /** Reads waiting or running now (the resume queue): the more, the wider one shared fill may be. */
  demand: () => number;
  /** The window is dropped after this long without a read, so an idle gateway holds nothing. */
  idleMs: number;
}

/** A contiguous slice of the stream, indexed by subject. */
interface Segment {
  /** Covers sequences (after, until]. */
  after: number;
  until: number;
  count: number;
  bySubject: Map<string, StoredEvent[]>;
}

/**
 * An in-memory window over the tail of the event stream, shared by every
 * resume on this gateway.
 *
 * Why: a resume reads a few subjects over a short recent range. Done against
 * JetStream that is an ordered consumer created and deleted per connection,
 * and a reconnect storm of thousands of devices becomes thousands of consumer
 * creations at once (measured: the server's API timed out and nobody
 * resumed). Here one fill reads the whole stream range once (every subject)
 * and every resume inside it is answered from memory through a per-subject
 * index. Requests reaching further back than the window can grow, or longer
 * than one fill may scan, go to the store, filtered by the server.
 *
 * The window only ever holds complete ranges of the log: a fill covers
 * (after, until] entirely or not at all, and events are immutable.
 */
export class RecentLog implements EventReader {
  private segments: Segment[] = [];
  /** Positions (`after`) of reads waiting for a fill. */
  private readonly waitingAfters: number[] = [];
  private size = 0;
  private fills: Promise<void> = Promise.resolve();
  private lastRead = 0;
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly store: RangeReader,
    private readonly options: RecentLogOptions,
    private readonly log: Logger,
  ) {}

  async readSubjects(subjects: string[], afterSeq: number, untilSeq: number, limit: number): Promise<RangeRead> {
    if (subjects.length === 0 || afterSeq >= untilSeq) return { events: [], truncated: false, reached: untilSeq };
    this.lastRead = Date.now();
    // A fill that failed (the log refusing reads, or answering short of the range's end) leaves the window as it
    // was: this read goes to the store, filtered by the server, like any read the window cannot serve.
    const covered = await this.cover(afterSeq, untilSeq).catch((err: unknown) => {
      this.log.warn('recent log fill failed; reading from the store', { afterSeq, untilSeq, err: String(err) });
      return false;
    });
    if (!covered) return this.store.readSubjects(subjects, afterSeq, untilSeq, limit);
    return this.collect(subjects, afterSeq, untilSeq, limit);
  }

  /** Events held now, for metrics and tests. */
  get held(): number {
    return this.size;
  }

  /** Drops the window (tests; an operator recreating the stream). */
  clear(): void {
    this.segments = [];
    this.size = 0;
  }

  stop(): void {
    if (this.idleTimer) clearInterval(this.idleTimer);
    this.idleTimer = null;
    this.clear();
  }

  private get lo(): number {
    return this.segments[0]?.after ?? 0;
  }

  private get hi(): number {
    return this.segments.at(-1)?.until ?? 0;
  }

  /** Makes the window cover (after, until] if that is within reach; false: read from the store instead. */
  private async cover(after: number, until: number): Promise<boolean> {
    const { capacity } = this.options;
    const maxScan = this.scanBudget();
    if (this.segments.length > 0 && after >= this.lo && until <= this.hi) return true;
    if (until - after > maxScan) return false;
    this.waitingAfters.push(after);
    try {
      for (let attempt = 0; attempt < 4; attempt++) {
        // Fills run one at a time; each waiter re-checks afterwards, as an earlier fill may have covered it.
        const run = this.fills.then(() => this.extend(after, until, capacity, maxScan));
        this.fills = run.then(
          () => undefined,
          () => undefined,
        );
        if (!(await run)) return false;
        if (after >= this.lo && until <= this.hi) return true;
      }
      return false;
    } finally {
      this.waitingAfters.splice(this.waitingAfters.indexOf(after), 1);
    }
  }

  /** Oldest position among the reads waiting for a fill: one fill reaching it serves them all. */
  private oldestWaiting(floor: number, fallback: number): number {
    let oldest = fallback;
    for (const a of this.waitingAfters) if (a < oldest && a >= floor) oldest = a;
    return oldest;
  }

  /** One fill towards (after, until]; false when the window cannot reach it. */
  private async extend(after: number, until: number, capacity: number, maxScan: number): Promise<boolean> {
    if (this.segments.length > 0 && after >= this.lo && until <= this.hi) return true;
    if (this.segments.length === 0 || after > this.hi) {
      // Nothing to extend, or a gap between the window and the request: start over around it, reaching
      // back to the oldest position other waiting reads (a storm) need, within one fill's budget.
      // A moment's pause first lets the reads of the same burst register their positions.
      if (this.options.demand() > 1) await new Promise<void>((resolve) => setImmediate(resolve));
      const start = this.oldestWaiting(Math.max(0, until - maxScan), after);
      this.clear();
      this.append(await this.fill(start, until, maxScan));
    } else if (after < this.lo) {
      const reach = Math.min(capacity - this.size, maxScan);
      if (this.lo - after > reach) return false;
      this.segments.unshift(await this.fill(this.oldestWaiting(this.lo - reach, after), this.lo, maxScan));
      this.size += this.segments[0]!.count;
    } else {
      // Forward: the oldest segments make room (a resume reaching back that far refills or uses the store).
      this.append(await this.fill(this.hi, until, maxScan));
    }
    this.watchIdle();
    return true;
  }

  private scanBudget(): number {
    const { maxScan, scanPerWaiter, demand } = this.options;
    return Math.min(maxScan, scanPerWaiter * Math.max(1, demand()));
  }

  private append(segment: Segment): void {
    this.segments.push(segment);
    this.size += segment.count;
    while (this.size > this.options.capacity && this.segments.length > 1) this.size -= this.segments.shift()!.count;
  }

  private async fill(after: number, until: number, maxScan: number): Promise<Segment> {
    const started = performance.now();
    const { events, truncated } = await this.store.readAll(after, until, maxScan);
    // A range of at most maxScan sequences cannot hold more events than that.
    if (truncated) throw new Error(`recent log: (${after}, ${until}] held more than ${maxScan} events`);
    const bySubject = new Map<string, StoredEvent[]>();
    for (const e of events) {
      let list = bySubject.get(e.subject);
      if (!list) bySubject.set(e.subject, (list = []));
      list.push(e);
    }
    this.log.debug('recent log filled', { after, until, events: events.length, ms: Math.round(performance.now() - started) });
    return { after, until, count: events.length, bySubject };
  }

  private collect(subjects: string[], after: number, until: number, limit: number): RangeRead {
    const out: StoredEvent[] = [];
    for (const segment of this.segments) {
      if (segment.until <= after || segment.after >= until) continue;
      for (const subject of new Set(subjects)) {
        const list = segment.bySubject.get(subject);
        if (!list) continue;
        for (let i = firstAfter(list, after); i < list.length && list[i]!.seq <= until; i++) out.push(list[i]!);
      }
    }
    out.sort((a, b) => a.seq - b.seq);
    if (out.length > limit) return { events: out.slice(0, limit), truncated: true, reached: out[limit - 1]!.seq };
    // The window holds complete ranges only: it vouches for the whole of (after, until].
    return { events: out, truncated: false, reached: until };
  }

  private watchIdle(): void {
    if (this.idleTimer) return;
    this.idleTimer = setInterval(
      guarded(this.log, 'recent log idle check', () => {
        if (Date.now() - this.lastRead < this.options.idleMs) return;
        this.stop();
      }),
      Math.max(1000, this.options.idleMs / 4),
    );
    this.idleTimer.unref();
  }
}

/** Index of the first event with seq > after (the list is in log order). */
function firstAfter(list: StoredEvent[], after: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.seq <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
