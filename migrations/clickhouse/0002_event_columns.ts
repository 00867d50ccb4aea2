import type { ClickHouseMigration } from './index.js';

/**
 * More typed columns on the raw table, all derived from ids, sizes and
 * counts (never message text), and insert deduplication. The analytics
 * projector inserts each batch with an `insert_deduplication_token`; a
 * non-replicated MergeTree only remembers tokens when
 * `non_replicated_deduplication_window` is above 0. The window counts blocks
 * (one per batch and month touched); a retry always comes before the next
 * batch, so 1000 is far more than needed.
 */
export const m0002EventColumns: ClickHouseMigration = {
  name: '0002_event_columns',
  statements: [
    `ALTER TABLE {db}.events
      ADD COLUMN IF NOT EXISTS text_bytes UInt32 DEFAULT 0 AFTER text_chars,
      ADD COLUMN IF NOT EXISTS ref_seq UInt64 DEFAULT 0 AFTER text_bytes,
      ADD COLUMN IF NOT EXISTS target_user_id String DEFAULT '' AFTER ref_seq,
      ADD COLUMN IF NOT EXISTS conversation_kind LowCardinality(String) DEFAULT '' AFTER target_user_id,
      ADD COLUMN IF NOT EXISTS role LowCardinality(String) DEFAULT '' AFTER conversation_kind,
      ADD COLUMN IF NOT EXISTS member_count UInt32 DEFAULT 0 AFTER role,
      ADD COLUMN IF NOT EXISTS mention_count UInt16 DEFAULT 0 AFTER member_count,
      ADD COLUMN IF NOT EXISTS attachment_count UInt16 DEFAULT 0 AFTER mention_count,
      ADD COLUMN IF NOT EXISTS attachment_bytes UInt64 DEFAULT 0 AFTER attachment_count`,
    `ALTER TABLE {db}.events MODIFY SETTING non_replicated_deduplication_window = 1000`,
  ],
};
