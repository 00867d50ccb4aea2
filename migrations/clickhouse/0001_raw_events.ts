import type { ClickHouseMigration } from './index.js';

/**
 * The raw event table analysts start from: one row per stored event, typed
 * columns, no message text (ids, sizes and timings only). ReplacingMergeTree
 * on the event's log position makes a re-ingested event collapse into the
 * same row, so retries and replays cannot double count after merges (queries
 * that must be exact before a merge use FINAL).
 */
export const m0001RawEvents: ClickHouseMigration = {
  name: '0001_raw_events',
  statements: [
    `CREATE TABLE IF NOT EXISTS {db}.events (
      shard UInt16,
      epoch String,
      seq UInt64,
      entity_kind LowCardinality(String),
      entity_id String,
      type LowCardinality(String),
      version UInt8,
      at DateTime64(3, 'UTC'),
      actor String,
      conversation_id String,
      message_id UInt64,
      text_chars UInt32,
      ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
    ) ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(at)
    ORDER BY (shard, epoch, seq)`,
  ],
};
