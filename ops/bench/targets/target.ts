/** A conversation the benchmark needs; `members[0]` creates it. */
export interface ConvSpec {
  kind: 'direct' | 'group' | 'channel';
  members: string[];
}

/** A system under test (Parley or the peer) as the scenarios see it. */
export interface Target {
  name: 'parley' | 'peer';
  /** Client URLs, one per server process that accepts connections. */
  urls: string[];
  /** The processes whose CPU and memory are "the server" in the figures (gateways, or the peer). */
  serverPids: number[];
  /** Processes doing the rest of the job (Parley's projector/analytics/notifier), reported for context. */
  supportPids: number[];
  /**
   * Cumulative CPU (µs) of the NATS and Postgres processes this system uses, by kind (`nats`, `postgres`),
   * when this run started them (set by the suite); read at the start and end of every phase.
   */
  infra?: Record<string, () => number>;
  createConversations(specs: ConvSpec[]): Promise<string[]>;
  /** Waits until everything appended so far is visible to connecting clients (Parley: the read model). */
  settle(): Promise<void>;
  /** Connections the server processes hold right now. */
  connections(): Promise<number>;
  /** CPU profiling of the (first) server process, where supported (Parley's gateway). */
  profile?: { start(): Promise<void>; stop(file: string): Promise<void> };
  /** Full garbage collection in the server processes, before a memory reading. */
  gc(): Promise<void>;
  stop(): Promise<void>;
}

/** Runs `fn` over items with at most `limit` in flight, keeping results in order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (i < items.length) {
        const k = i++;
        out[k] = await fn(items[k]!, k);
      }
    }),
  );
  return out;
}
