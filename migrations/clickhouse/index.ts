import { m0001RawEvents } from './0001_raw_events.js';
import { m0002EventColumns } from './0002_event_columns.js';
import { m0003MessageRollups } from './0003_message_rollups.js';
import { m0004UserActivity } from './0004_user_activity.js';
import { m0005Deliveries } from './0005_deliveries.js';
import { m0006IngestCheckpoints } from './0006_ingest_checkpoints.js';
import { m0007ShardRefs } from './0007_shard_refs.js';

export interface ClickHouseMigration {
  name: string;
  /** Executed in order; `{db}` is replaced by the analytics database name. Statements must be idempotent (IF NOT EXISTS). */
  statements: string[];
}

/** Every ClickHouse migration, in order. Never edit one that has shipped. */
export const clickhouseMigrations: ClickHouseMigration[] = [
  m0001RawEvents,
  m0002EventColumns,
  m0003MessageRollups,
  m0004UserActivity,
  m0005Deliveries,
  m0006IngestCheckpoints,
  m0007ShardRefs,
];
