import type { ClickHouseMigration } from './index.js';

/**
 * Active users and first activity, from the `actor` of every event: the
 * actor always did something at that moment (sent, reacted, read, created,
 * or caused a derived membership event). One row per day and user (after
 * merges), so DAU, WAU and MAU are exact distinct counts over a day, week or
 * month of this table, and retention cohorts join it with `user_first_seen`.
 * Weekly and monthly tables of their own would add two views to every
 * insert (each view costs a part write per batch) for no extra precision.
 */

export const m0004UserActivity: ClickHouseMigration = {
  name: '0004_user_activity',
  statements: [
    `CREATE TABLE IF NOT EXISTS {db}.active_users_daily (
      day Date,
      user_id String,
      events UInt64,
      messages UInt64
    ) ENGINE = SummingMergeTree
    PARTITION BY toYYYYMM(day)
    ORDER BY (day, user_id)
    SETTINGS non_replicated_deduplication_window = 1000`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.active_users_daily_mv TO {db}.active_users_daily AS
    SELECT toDate(at) AS day, actor AS user_id, count() AS events, countIf(type = 'message.sent') AS messages
    FROM {db}.events
    GROUP BY day, user_id`,
    // min/max are idempotent on their own; the window still keeps a retried batch from adding rows.
    `CREATE TABLE IF NOT EXISTS {db}.user_first_seen (
      user_id String,
      first_at SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
      last_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
    ) ENGINE = AggregatingMergeTree
    ORDER BY user_id
    SETTINGS non_replicated_deduplication_window = 1000`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.user_first_seen_mv TO {db}.user_first_seen AS
    SELECT actor AS user_id, min(at) AS first_at, max(at) AS last_at
    FROM {db}.events
    GROUP BY user_id`,
  ],
};
