import type { Msg, Subscription } from '@nats-io/transport-node';
import { randomUUID } from 'node:crypto';
import { DeliveryTiming } from '../../contracts/index.js';
import type { Logger } from '../observability/logger.js';
import type { Runtime } from '../runtime/runtime.js';
import { formatAt } from './rows.js';
import { insertLines } from './sink.js';

export interface DeliveryIngesterOptions {
  /** Most records per INSERT. Default 5,000. */
  maxBatch?: number;
  /** Longest a record waits before its batch is inserted. Default 250 ms. */
  maxDelayMs?: number;
  /** Records held while ClickHouse is unavailable; newer ones are dropped beyond it. Default 100,000. */
  maxBuffered?: number;
}

const ATTEMPTS = 3;
const decoder = new TextDecoder();

/**
 * Stores the gateways' send-to-deliver timing records (core NATS, published
 * by each gateway in batches, gateway/ws/delivery-timing.ts) in `deliveries`,
 * batched like the event log. These are metrics, not facts from the log: at
 * most once (a record published while this service is down is gone), and a
 * batch ClickHouse refuses three times is dropped with a warning rather than
 * held forever. Each batch carries its own dedup token, so a retry after an
 * ambiguous failure does not count twice.
 */
export class DeliveryIngester {
  private sub: Subscription | null = null;
  private buffer: string[] = [];
  private timer: NodeJS.Timeout | null = null;
  private inflight: Promise<void> | null = null;
  private readonly maxBatch: number;
  private readonly maxDelayMs: number;
  private readonly maxBuffered: number;
  private readonly log: Logger;
  private readonly counters;

  constructor(
    private readonly runtime: Runtime,
    options: DeliveryIngesterOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 5000;
    this.maxDelayMs = options.maxDelayMs ?? 250;
    this.maxBuffered = options.maxBuffered ?? 100_000;
    this.log = runtime.log.child({ component: 'analytics-deliveries' });
    this.counters = {
      stored: runtime.metrics.counter('parley_analytics_deliveries_total', 'Delivery timing records stored in ClickHouse.'),
      dropped: runtime.metrics.counter(
        'parley_analytics_deliveries_dropped_total',
        'Delivery timing records dropped (invalid, buffer full, or refused by ClickHouse).',
        ['reason'],
      ),
    };
  }

  start(): void {
    this.sub = this.runtime.nats.nc.subscribe(this.runtime.subjects.metricsDelivery(), { callback: (err, msg) => (err ? undefined : this.receive(msg)) });
  }

  async stop(): Promise<void> {
    this.sub?.unsubscribe();
    this.sub = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.inflight;
    this.flush();
    await this.inflight;
  }

  /** A message is a batch of records (a JSON array, what gateways publish) or one record (gateways before batching). */
  private receive(msg: Msg): void {
    let body: unknown;
    try {
      body = JSON.parse(decoder.decode(msg.data));
    } catch {
      this.counters.dropped.inc({ reason: 'invalid' });
      return;
    }
    if (Array.isArray(body)) for (const record of body) this.add(record);
    else this.add(body);
    if (this.buffer.length >= this.maxBatch) this.flush();
    else if (this.buffer.length > 0 && !this.timer) this.timer = setTimeout(() => this.flush(), this.maxDelayMs);
  }

  /** Each record is checked on its own: one invalid record of a batch drops only itself. */
  private add(record: unknown): void {
    const parsed = DeliveryTiming.safeParse(record);
    if (!parsed.success) {
      this.counters.dropped.inc({ reason: 'invalid' });
      return;
    }
    if (this.buffer.length >= this.maxBuffered) {
      this.counters.dropped.inc({ reason: 'buffer_full' });
      return;
    }
    const d = parsed.data;
    // Clocks of the writer and the gateway can disagree by a little: never a negative latency.
    const latency = Math.max(0, d.deliveredAt - d.at);
    // `seq` is a sequence of the conversation's shard: stored with it, so the record names one event.
    const shard = this.runtime.subjects.shardOf(d.conversationId);
    this.buffer.push(
      JSON.stringify([formatAt(d.deliveredAt), formatAt(d.at), shard, d.seq, d.conversationId, Math.min(latency, 4294967295), d.recipients ?? 0]),
    );
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.inflight || this.buffer.length === 0) return;
    const lines = this.buffer.splice(0, this.maxBatch);
    this.inflight = this.insert(lines).finally(() => {
      this.inflight = null;
      if (this.buffer.length >= this.maxBatch) this.flush();
      else if (this.buffer.length > 0 && !this.timer && this.sub) this.timer = setTimeout(() => this.flush(), this.maxDelayMs);
    });
  }

  private async insert(lines: string[]): Promise<void> {
    const db = this.runtime.config.clickhouse.database;
    const statement = `INSERT INTO ${db}.deliveries (delivered_at, at, shard, seq, conversation_id, latency_ms, recipients)
      SETTINGS insert_deduplicate = 1, insert_deduplication_token = 'deliveries:${randomUUID()}', deduplicate_blocks_in_dependent_materialized_views = 1, async_insert = 0
      FORMAT JSONCompactEachRow`;
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      try {
        await insertLines(this.runtime.clickhouse, statement, lines);
        this.counters.stored.inc(undefined, lines.length);
        return;
      } catch (err) {
        if (attempt === ATTEMPTS) {
          this.counters.dropped.inc({ reason: 'insert_failed' }, lines.length);
          this.log.warn('delivery timing batch dropped after retries', { records: lines.length, err });
          return;
        }
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  }
}
