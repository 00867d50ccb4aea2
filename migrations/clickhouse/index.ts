import { m0001RawEvents } from './0001_raw_events.js';

export interface ClickHouseMigration {
  name: string;
  /** Executed in order; `{db}` is replaced by the analytics database name. Statements must be idempotent (IF NOT EXISTS). */
  statements: string[];
}

/** Every ClickHouse migration, in order. Never edit one that has shipped. */
export const clickhouseMigrations: ClickHouseMigration[] = [m0001RawEvents];
