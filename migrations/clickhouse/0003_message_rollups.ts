import type { ClickHouseMigration } from './index.js';

/**
 * Messages per minute, hour and day per conversation, maintained by
 * materialized views on inserts into `events`. Ordered by time first, so a
 * window scan (totals, top-k conversations) reads a contiguous range; a
 * SummingMergeTree folds rows of the same bucket and conversation on merge,
 * so queries always aggregate with sum() rather than trusting one row per key.
 * Each target remembers insert tokens too: a retried batch lands in every
 * rollup exactly once, even when the first attempt reached only some of them.
 */
const rollup = (table: string, bucket: string, bucketExpr: string) => [
  `CREATE TABLE IF NOT EXISTS {db}.${table} (
    ${bucket} DateTime('UTC'),
    conversation_id String,
    messages UInt64,
    text_chars UInt64,
    text_bytes UInt64,
    attachments UInt64
  ) ENGINE = SummingMergeTree
  PARTITION BY toYYYYMM(${bucket})
  ORDER BY (${bucket}, conversation_id)
  SETTINGS non_replicated_deduplication_window = 1000`,
  `CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.${table}_mv TO {db}.${table} AS
  SELECT ${bucketExpr} AS ${bucket}, conversation_id,
    count() AS messages, sum(text_chars) AS text_chars, sum(text_bytes) AS text_bytes, sum(attachment_count) AS attachments
  FROM {db}.events
  WHERE type = 'message.sent'
  GROUP BY ${bucket}, conversation_id`,
];

export const m0003MessageRollups: ClickHouseMigration = {
  name: '0003_message_rollups',
  statements: [
    ...rollup('messages_by_minute', 'minute', 'toStartOfMinute(at)'),
    ...rollup('messages_by_hour', 'hour', 'toStartOfHour(at)'),
    ...rollup('messages_by_day', 'day', 'toStartOfDay(at)'),
  ],
};
