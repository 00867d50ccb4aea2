import type { Runtime } from '../runtime/runtime.js';
import type { Fence } from '../leases/single-active.js';
import { projectorMetrics } from './consumer.js';
import { AnalyticsShardIngest, InsertTurn } from './shard-ingest.js';
import { truncateDerivedTables } from './sink.js';
import { startAll } from '../concurrency/start-all.js';

export { EVENTS_PER_TURN, nextTurn } from './shard-ingest.js';

export interface AnalyticsProjectorOptions {
  /**
   * Most events per INSERT. Each insert writes a part per table and view, and
   * a part costs ClickHouse a few ms of CPU whatever its size (about 50 ms a
   * batch with every view attached, chDB on 2 cores), so catching up wants big
   * batches: at 100,000 that is 0.5 µs per event, at 20,000 2.5 µs.
   * Live traffic is batched by `maxDelayMs` long before this. Default 100,000.
   */
  maxBatch?: number;
  /** Longest a received event waits for its batch to be inserted. Default 250 ms. */
  maxDelayMs?: number;
  /** First delay before retrying a failed insert; doubles up to 30 s. Default 500 ms. */
  retryDelayMs?: number;
  /** Checked before each insert: throws once this process no longer holds the `analytics` lease, and no further batch is sent. */
  fence?: Fence;
}

export const DEFAULT_MAX_BATCH = 100_000;

/** The durable consumer name on shard `shard`'s stream: shard 0 keeps the one-shard name. */
export function analyticsConsumerName(namespace: string, shard: number): string {
  return shard === 0 ? `${namespace}-analytics` : `${namespace}-analytics_s${shard}`;
}

/**
 * Folds the whole log into ClickHouse (docs/analytics.md, "Idempotency"):
 * one ingest per shard stream (STREAM_SHARDS, shard-ingest.ts), each with its
 * own consumer and checkpoint row (consumer, shard, epoch), all under the one
 * `analytics` lease. Rows are keyed by (shard, epoch, seq), so the shards'
 * sequences, which all start at 1, never collide.
 */
export class AnalyticsProjector {
  private readonly ingests: AnalyticsShardIngest[];

  constructor(
    private readonly runtime: Runtime,
    options: AnalyticsProjectorOptions = {},
  ) {
    const settings = {
      maxBatch: options.maxBatch ?? DEFAULT_MAX_BATCH,
      maxDelayMs: options.maxDelayMs ?? 250,
      retryDelayMs: options.retryDelayMs ?? 500,
      fence: options.fence,
      // The checkpoint's consumer column keeps the one-shard name for every shard: its shard column tells them apart.
      checkpointConsumer: analyticsConsumerName(runtime.subjects.namespace, 0),
      counters: projectorMetrics(runtime.metrics),
      turn: new InsertTurn(),
    };
    this.ingests = runtime.shards.map((s) => new AnalyticsShardIngest(runtime, s, analyticsConsumerName(runtime.subjects.namespace, s.shard), settings));
  }

  /** Shard 0's consumer (the only one with one shard). */
  get consumerName(): string {
    return this.shard(0).consumerName;
  }

  /** The ingest of shard `k`. */
  shard(k: number): AnalyticsShardIngest {
    const ingest = this.ingests[k];
    if (!ingest) throw new RangeError(`no shard ${k} (the log has ${this.ingests.length})`);
    return ingest;
  }

  /** Shard 0's progress (the whole log's with one shard); per shard: `shard(k).insertedThrough`. */
  get insertedThrough(): number {
    return this.shard(0).insertedThrough;
  }

  /** Starts every shard's ingest; if one cannot start, none is left running. */
  async start(): Promise<void> {
    await startAll(this.ingests);
  }

  async stop(): Promise<void> {
    await Promise.all(this.ingests.map((i) => i.stop()));
  }

  /** Empties every table derived from the log and ingests every shard again from its first event. */
  async rebuild(): Promise<void> {
    await this.stop();
    await truncateDerivedTables(this.runtime.clickhouse, this.runtime.config.clickhouse.database);
    await this.start();
  }

  /** Resolves once every event of shard `shard` (0 by default) up to `seq` is in ClickHouse. */
  waitFor(seq: number, timeoutMs = 10_000, shard = 0): Promise<void> {
    return this.shard(shard).waitFor(seq, timeoutMs);
  }

  /** Resolves once every event each shard's stream holds now is in ClickHouse. */
  async waitForLog(timeoutMs = 10_000): Promise<void> {
    await Promise.all(this.ingests.map(async (i) => i.waitFor((await this.runtime.nats.jsm.streams.info(i.shard.stream)).state.last_seq, timeoutMs)));
  }
}
