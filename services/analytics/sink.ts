import type { ClickHouseClient } from '@clickhouse/client';
import { Readable } from 'node:stream';
import type { EventRow } from './rows.js';

/**
 * The ClickHouse side of analytics ingestion: one INSERT per batch, carrying
 * an explicit `insert_deduplication_token`, and the checkpoint that records
 * which batch was last attempted.
 *
 * Guarantee (verified against chDB's engine, ClickHouse 26.x, and the same
 * for a ClickHouse server): an INSERT with a token that the table has seen
 * within its `non_replicated_deduplication_window` is skipped block by
 * block, in `events` and in every materialized-view target (each view
 * derives its own token from ours), while blocks that did not land the first
 * time are written. So re-sending a batch whose first attempt failed halfway
 * (the raw part written, one view not) completes it without counting
 * anything twice. Settings go in the statement's SETTINGS clause, never as
 * session SETs: chDB keeps SETs for the whole session, which would give the
 * next insert this batch's token.
 */

const EVENT_COLUMNS = [
  'shard', 'epoch', 'seq', 'entity_kind', 'entity_id', 'type', 'version', 'at', 'actor', 'conversation_id',
  'message_id', 'text_chars', 'text_bytes', 'ref_seq', 'target_user_id', 'conversation_kind', 'role',
  'member_count', 'mention_count', 'attachment_count', 'attachment_bytes',
] as const satisfies readonly (keyof EventRow)[];

const TOKEN = /^[A-Za-z0-9_:.-]{1,200}$/;

/** Synchronous (not async_insert, which chDB enables by default) so a returned insert is visible and complete. */
function insertSettings(token: string): string {
  if (!TOKEN.test(token)) throw new Error(`unsafe dedup token ${JSON.stringify(token)}`);
  return `SETTINGS insert_deduplicate = 1, insert_deduplication_token = '${token}', deduplicate_blocks_in_dependent_materialized_views = 1, async_insert = 0`;
}

/** Runs an INSERT ... FORMAT JSON*EachRow with its rows, and reads the (empty) response to the end. */
export async function insertJsonRows(client: ClickHouseClient, statement: string, lines: string[]): Promise<void> {
  if (lines.length === 0) return;
  const result = await client.exec({ query: statement, values: Readable.from([lines.join('\n')]) });
  // A ClickHouse server's HTTP response must be consumed to free the socket.
  for await (const _ of result.stream) void _;
}

/** One JSONCompactEachRow line, in EVENT_COLUMNS order: about half the parsing work of named keys. */
export function eventRowJson(r: EventRow): string {
  return JSON.stringify([
    r.shard, r.epoch, r.seq, r.entity_kind, r.entity_id, r.type, r.version, r.at, r.actor, r.conversation_id,
    r.message_id, r.text_chars, r.text_bytes, r.ref_seq, r.target_user_id, r.conversation_kind, r.role,
    r.member_count, r.mention_count, r.attachment_count, r.attachment_bytes,
  ]);
}

/**
 * Inserts a batch of event rows (as `eventRowJson` lines) idempotently. The
 * same token with the same rows is always safe to send again.
 */
export async function insertEvents(client: ClickHouseClient, database: string, lines: string[], token: string): Promise<void> {
  const statement = `INSERT INTO ${database}.events (${EVENT_COLUMNS.join(', ')}) ${insertSettings(token)} FORMAT JSONCompactEachRow`;
  await insertJsonRows(client, statement, lines);
}

/** A batch the projector started to insert: sequences `first..last` of one shard and stream epoch. */
export interface BatchIntent {
  first: number;
  last: number;
  token: string;
}

export interface CheckpointKey {
  consumer: string;
  shard: number;
  epoch: string;
}

export function batchToken(key: CheckpointKey, first: number, last: number): string {
  return `${key.consumer}:${key.shard}:${key.epoch}:${first}-${last}`;
}

/** The batch last recorded before an insert, or null when this consumer has inserted nothing in this epoch. */
export async function readIntent(client: ClickHouseClient, database: string, key: CheckpointKey): Promise<BatchIntent | null> {
  const rs = await client.query({
    query: `SELECT first_seq, last_seq, token FROM ${database}.ingest_checkpoints FINAL
      WHERE consumer = {consumer:String} AND shard = {shard:UInt16} AND epoch = {epoch:String}`,
    query_params: { consumer: key.consumer, shard: key.shard, epoch: key.epoch },
    format: 'JSONEachRow',
  });
  const rows = await rs.json<{ first_seq: string | number; last_seq: string | number; token: string }>();
  const row = rows[0];
  return row ? { first: Number(row.first_seq), last: Number(row.last_seq), token: row.token } : null;
}

/** Records a batch before inserting it; written synchronously so a crash right after still finds it. */
export async function writeIntent(client: ClickHouseClient, database: string, key: CheckpointKey, intent: BatchIntent): Promise<void> {
  const line = JSON.stringify({ consumer: key.consumer, shard: key.shard, epoch: key.epoch, first_seq: intent.first, last_seq: intent.last, token: intent.token });
  // No dedup here: recording the same intent twice is harmless (same version, same values).
  await insertJsonRows(client, `INSERT INTO ${database}.ingest_checkpoints (consumer, shard, epoch, first_seq, last_seq, token) SETTINGS async_insert = 0 FORMAT JSONEachRow`, [line]);
}

/** Every table the projector and the delivery ingester fill, for a rebuild from the log. */
export const ANALYTICS_TABLES = [
  'events', 'messages_by_minute', 'messages_by_hour', 'messages_by_day', 'active_users_daily', 'user_first_seen',
  'ingest_checkpoints',
] as const;

/** The delivery tables are metrics from live traffic, not derived from the log: a rebuild keeps them. */
export const DELIVERY_TABLES = ['deliveries', 'delivery_latency_by_minute', 'delivery_latency_histogram'] as const;

/**
 * Empties every table derived from the log (and the checkpoint), so the next
 * start of the projector ingests the log again from its first sequence.
 * TRUNCATE also forgets the tables' dedup tokens, so the replayed batches
 * are not mistaken for the old ones.
 */
export async function truncateDerivedTables(client: ClickHouseClient, database: string): Promise<void> {
  for (const table of ANALYTICS_TABLES) await client.command({ query: `TRUNCATE TABLE IF EXISTS ${database}.${table}` });
}
