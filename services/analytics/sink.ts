import type { ClickHouseClient } from '@clickhouse/client';
import { Readable } from 'node:stream';
import type { EventRow } from './rows.js';

/**
 * The ClickHouse side of analytics ingestion: one INSERT per batch, carrying
 * an explicit `insert_deduplication_token`, and the checkpoint that records
 * which batch was last attempted.
 *
 * Guarantee (verified against chDB's engine, ClickHouse 26.7, by
 * test/analytics.e2e.test.ts; documented the same for a ClickHouse server):
 * an INSERT with a token that the table has seen
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
  'shard',
  'epoch',
  'seq',
  'entity_kind',
  'entity_id',
  'type',
  'version',
  'at',
  'actor',
  'conversation_id',
  'message_id',
  'text_chars',
  'text_bytes',
  'ref_seq',
  'ref_shard',
  'target_user_id',
  'conversation_kind',
  'role',
  'member_count',
  'mention_count',
  'attachment_count',
  'attachment_bytes',
] as const satisfies readonly (keyof EventRow)[];

const TOKEN = /^[A-Za-z0-9_:.-]{1,200}$/;

/**
 * Synchronous (not async_insert, which chDB enables by default) so a
 * returned insert is visible and complete. optimize_on_insert = 0: rows of a
 * batch never share a key (one per log position; the views already GROUP
 * BY), so folding them at insert time is wasted work on the ingest path.
 */
function insertSettings(token: string): string {
  if (!TOKEN.test(token)) throw new Error(`unsafe dedup token ${JSON.stringify(token)}`);
  return `SETTINGS insert_deduplicate = 1, insert_deduplication_token = '${token}', deduplicate_blocks_in_dependent_materialized_views = 1, async_insert = 0, optimize_on_insert = 0`;
}

/** Runs an INSERT ... FORMAT <line format> with its rows, and reads the (empty) response to the end. */
export async function insertLines(client: ClickHouseClient, statement: string, lines: string[]): Promise<void> {
  if (lines.length === 0) return;
  const result = await client.exec({ query: statement, values: Readable.from([lines.join('\n')]) });
  // A ClickHouse server's HTTP response must be consumed to free the socket.
  for await (const _ of result.stream) void _;
}

const NEEDS_ESCAPE = /[\t\n\r\\]/;
const ESCAPES: Record<string, string> = { '\t': '\\t', '\n': '\\n', '\r': '\\r', '\\': '\\\\' };
/** TabSeparated text escaping. Ids never need it (they are subject-safe), but nothing here trusts that. */
const tsv = (s: string) => (NEEDS_ESCAPE.test(s) ? s.replace(/[\t\n\r\\]/g, (c) => ESCAPES[c]!) : s);

/**
 * One TabSeparated line, in EVENT_COLUMNS order. ClickHouse parses this
 * format noticeably faster than JSON (10-30% more events/s into chDB with
 * every view attached), and ingest speed is what a rebuild waits on.
 */
export function eventRowLine(r: EventRow): string {
  return [
    r.shard,
    tsv(r.epoch),
    r.seq,
    tsv(r.entity_kind),
    tsv(r.entity_id),
    tsv(r.type),
    r.version,
    r.at,
    tsv(r.actor),
    tsv(r.conversation_id),
    tsv(r.message_id),
    r.text_chars,
    r.text_bytes,
    r.ref_seq,
    r.ref_shard,
    tsv(r.target_user_id),
    tsv(r.conversation_kind),
    tsv(r.role),
    r.member_count,
    r.mention_count,
    r.attachment_count,
    r.attachment_bytes,
  ].join('\t');
}

/**
 * Inserts a batch of event rows (as `eventRowLine` lines) idempotently. The
 * same token with the same rows is always safe to send again.
 */
export async function insertEvents(client: ClickHouseClient, database: string, lines: string[], token: string): Promise<void> {
  const statement = `INSERT INTO ${database}.events (${EVENT_COLUMNS.join(', ')}) ${insertSettings(token)} FORMAT TabSeparated`;
  await insertLines(client, statement, lines);
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
  const line = JSON.stringify({
    consumer: key.consumer,
    shard: key.shard,
    epoch: key.epoch,
    first_seq: intent.first,
    last_seq: intent.last,
    token: intent.token,
  });
  // No dedup here: recording the same intent twice is harmless (same version, same values).
  await insertLines(
    client,
    `INSERT INTO ${database}.ingest_checkpoints (consumer, shard, epoch, first_seq, last_seq, token) SETTINGS async_insert = 0 FORMAT JSONEachRow`,
    [line],
  );
}

/** Every table derived from the log, and the checkpoint: what a rebuild empties. */
export const ANALYTICS_TABLES = [
  'events',
  'messages_by_minute',
  'messages_by_hour',
  'messages_by_day',
  'active_users_daily',
  'user_first_seen',
  'ingest_checkpoints',
] as const;

/**
 * Empties every table derived from the log (and the checkpoint), so the next
 * start of the projector ingests the log again from its first sequence.
 * TRUNCATE also forgets the tables' dedup tokens, so the replayed batches
 * are not mistaken for the old ones. The delivery tables are kept: they are
 * metrics from live traffic, not derived from the log.
 */
export async function truncateDerivedTables(client: ClickHouseClient, database: string): Promise<void> {
  for (const table of ANALYTICS_TABLES) await client.command({ query: `TRUNCATE TABLE IF EXISTS ${database}.${table}` });
}
