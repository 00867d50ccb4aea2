import type { ClickHouseMigration } from './index.js';

/**
 * The analytics projector's checkpoint lives next to the data it guards.
 * Before inserting a batch the projector records the batch's sequence range
 * and dedup token here; every earlier batch is known to have landed, so on
 * start it re-inserts the recorded range with the same token (a no-op if it
 * had landed) and continues after it. Versioned by `last_seq`: FINAL returns
 * the latest batch per consumer, shard and stream epoch.
 */
export const m0006IngestCheckpoints: ClickHouseMigration = {
  name: '0006_ingest_checkpoints',
  statements: [
    `CREATE TABLE IF NOT EXISTS {db}.ingest_checkpoints (
      consumer String,
      shard UInt16,
      epoch String,
      first_seq UInt64,
      last_seq UInt64,
      token String,
      written_at DateTime64(3, 'UTC') DEFAULT now64(3)
    ) ENGINE = ReplacingMergeTree(last_seq)
    ORDER BY (consumer, shard, epoch)`,
  ],
};
