import { sql, type Transaction } from 'kysely';
import type { LogTombstoned } from '../../contracts/index.js';
import type { Database } from '../read-store/schema.js';
import { decodeEvent, type StoredEvent } from '../event-log/event-store.js';
import { describeFailure, isTransient } from './failure.js';
import type { Projection } from './projection.js';

/**
 * Tombstones as the projection runner sees them (apply.ts). A tombstoned
 * event is never applied by any projection:
 *
 * - before its tombstone is in the log's index (`log_tombstones`, public
 *   schema, also read by rebuilds into a shadow schema) it is looked up by
 *   sequence per batch, so a replay from the start skips it though the
 *   tombstone comes later in the log;
 * - when the `log.tombstoned` event itself arrives, it is recorded in the
 *   index (so the index follows from the log even when the operator's
 *   command could not write it), an event it names that this projector
 *   parked is marked `tombstoned`, and the events held behind it are applied
 *   in order: the entity flows again without an operator's re-drive.
 *
 * An event applied before its tombstone keeps its effect until the
 * projection is rebuilt (`parley log tombstone` says so).
 */

type Trx = Transaction<Database>;

export interface LogRef {
  stream: string;
  epoch: string;
}

/** The sequences among `seqs` that are tombstoned. */
export async function tombstonedAmong(trx: Trx, log: LogRef, seqs: number[]): Promise<Set<number>> {
  if (seqs.length === 0) return new Set();
  let first = seqs[0]!;
  let last = first;
  for (const s of seqs) (first = Math.min(first, s)), (last = Math.max(last, s));
  const rows = await sql<{ seq: string }>`select seq from public.log_tombstones
    where stream = ${log.stream} and epoch = ${log.epoch} and seq between ${first} and ${last}`.execute(trx);
  return new Set(rows.rows.map((r) => Number(r.seq)));
}

/** Records a tombstone in the index (idempotent: the operator's command and every projector write the same row). */
export async function recordTombstone(
  trx: Trx | import('kysely').Kysely<Database>,
  log: LogRef,
  subject: string,
  tombstoneSeq: number,
  event: LogTombstoned,
): Promise<void> {
  const d = event.data;
  await sql`insert into public.log_tombstones (stream, epoch, seq, subject, reason, by, tombstone_seq)
    values (${log.stream}, ${log.epoch}, ${d.seq}, ${subject}, ${d.reason}, ${d.by}, ${tombstoneSeq})
    on conflict (stream, epoch, seq) do nothing`.execute(trx);
}

/** A tombstone this projection's log names (on this stream), or null. */
export function tombstoneIn(stored: StoredEvent, log: LogRef): LogTombstoned | null {
  const e = stored.event;
  return e.type === 'log.tombstoned' && e.data.stream === log.stream && e.data.seq < stored.seq ? e : null;
}

export interface Resolution {
  /** The event the tombstone names was parked (or held) here and is now marked `tombstoned`. */
  resolved: boolean;
  /** Held events applied because their entity is no longer blocked. */
  released: number[];
  /** The entity is still blocked (another parked event, or a held one failed). */
  blocked: boolean;
}

/**
 * Marks the parked (or held) row of the event a tombstone names as
 * `tombstoned`, then, unless another event of the entity is still parked,
 * applies the entity's held events in order (each in a savepoint; one that
 * fails becomes the entity's parked event and stops the release).
 */
export async function resolveTombstoned(trx: Trx, projection: Projection, shard: number, entity: string, dead: Set<number>): Promise<Resolution> {
  const marked = await trx
    .updateTable('parked_events')
    .set({ status: 'tombstoned', resolved_at: sql`now()` })
    .where('projector', '=', projection.name)
    .where('shard', '=', shard)
    .where('entity', '=', entity)
    .where('seq', 'in', [...dead].map(String))
    .where('status', 'in', ['parked', 'held'])
    .executeTakeFirst();
  const rows = await trx
    .selectFrom('parked_events')
    .select(['id', 'seq', 'subject', 'payload', 'status'])
    .where('projector', '=', projection.name)
    .where('shard', '=', shard)
    .where('entity', '=', entity)
    .where('status', 'in', ['parked', 'held'])
    .orderBy('seq')
    .execute();
  const result: Resolution = { resolved: marked.numUpdatedRows > 0n, released: [], blocked: rows.length > 0 };
  if (rows.some((r) => r.status === 'parked')) return result;
  for (const row of rows) {
    let failure: string | null = null;
    await sql`savepoint parley_release`.execute(trx);
    try {
      await projection.apply(trx, [{ seq: Number(row.seq), subject: row.subject, event: decodeEvent(row.payload) }]);
      await sql`release savepoint parley_release`.execute(trx);
    } catch (err) {
      await sql`rollback to savepoint parley_release`.execute(trx);
      if (isTransient(err)) throw err;
      failure = describeFailure(err);
    }
    if (failure !== null) {
      await trx
        .updateTable('parked_events')
        .set({ status: 'parked', reason: `released after a tombstone, then failed: ${failure}` })
        .where('id', '=', row.id)
        .execute();
      return result;
    }
    await trx.updateTable('parked_events').set({ status: 'redriven', resolved_at: sql`now()` }).where('id', '=', row.id).execute();
    result.released.push(Number(row.seq));
  }
  result.blocked = false;
  return result;
}
