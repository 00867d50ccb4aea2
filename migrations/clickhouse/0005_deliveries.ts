import type { ClickHouseMigration } from './index.js';

/**
 * Send-to-deliver timing reported by gateways: one row per message event
 * per gateway that fanned it out to local sockets. `latency_ms` is the
 * gateway's clock at fan-out minus the event's `at` (the writer's clock when
 * the message was accepted), clamped at 0. Rolled up per minute into exact
 * percentiles (quantileTiming is exact below 1024 ms and for up to 5670
 * values per state) and a fixed-bucket histogram.
 */
const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 4294967295];

export const m0005Deliveries: ClickHouseMigration = {
  name: '0005_deliveries',
  statements: [
    `CREATE TABLE IF NOT EXISTS {db}.deliveries (
      delivered_at DateTime64(3, 'UTC'),
      at DateTime64(3, 'UTC'),
      seq UInt64,
      conversation_id String,
      latency_ms UInt32,
      recipients UInt32 DEFAULT 0,
      ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
    ) ENGINE = MergeTree
    PARTITION BY toYYYYMM(delivered_at)
    ORDER BY (delivered_at, seq)
    SETTINGS non_replicated_deduplication_window = 1000`,
    `CREATE TABLE IF NOT EXISTS {db}.delivery_latency_by_minute (
      minute DateTime('UTC'),
      deliveries SimpleAggregateFunction(sum, UInt64),
      max_ms SimpleAggregateFunction(max, UInt32),
      latency AggregateFunction(quantilesTiming(0.5, 0.9, 0.99, 0.999), UInt32)
    ) ENGINE = AggregatingMergeTree
    PARTITION BY toYYYYMM(minute)
    ORDER BY minute
    SETTINGS non_replicated_deduplication_window = 1000`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.delivery_latency_by_minute_mv TO {db}.delivery_latency_by_minute AS
    SELECT toStartOfMinute(delivered_at) AS minute, count() AS deliveries, max(latency_ms) AS max_ms,
      quantilesTimingState(0.5, 0.9, 0.99, 0.999)(latency_ms) AS latency
    FROM {db}.deliveries
    GROUP BY minute`,
    `CREATE TABLE IF NOT EXISTS {db}.delivery_latency_histogram (
      minute DateTime('UTC'),
      le_ms UInt32,
      deliveries UInt64
    ) ENGINE = SummingMergeTree
    PARTITION BY toYYYYMM(minute)
    ORDER BY (minute, le_ms)
    SETTINGS non_replicated_deduplication_window = 1000`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.delivery_latency_histogram_mv TO {db}.delivery_latency_histogram AS
    SELECT toStartOfMinute(delivered_at) AS minute,
      arrayFirst(b -> latency_ms <= b, [${LATENCY_BUCKETS_MS.join(', ')}]) AS le_ms,
      count() AS deliveries
    FROM {db}.deliveries
    GROUP BY minute, le_ms`,
  ],
};
