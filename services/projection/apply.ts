import { sql, type Transaction } from 'kysely';
import type { Database, ParkedEventsTable } from '../read-store/schema.js';
import { decodeEvent, type StoredEvent } from '../event-log/event-store.js';
import { advanceCheckpoint, CheckpointMoved, inSchema } from './checkpoint.js';
import { describeFailure, isTransient } from './failure.js';
import { entityOf, type Delivery, type Projection, type ProjectorDeps } from './projection.js';
import { recordTombstone, resolveTombstoned, tombstonedAmong, tombstoneIn, type LogRef } from './tombstones.js';
import { PREPARED } from '../read-store/prepared.js';

export interface ApplyOptions {
  shard: number;
  /** Write into this schema instead of the live tables (a rebuild's shadow). */
  schema?: string;
  /** The checkpoint the caller last committed; anything else means someone moved it (CheckpointMoved). */
  expectedCheckpoint?: number;
  /** A failing event is parked once it has been delivered this many times. */
  maxDeliveries: number;
}

export interface ApplyResult {
  /** Deliveries handled, from the start (applied, already applied, parked or held): ack them. */
  handled: number;
  /** The checkpoint after the commit. */
  checkpoint: number;
  applied: number;
  parked: ParkedNote[];
  held: number;
  /** Why the deliveries after `handled` must be retried, if any are left. */
  retryReason: unknown;
  /** Tombstones met (tombstones.ts): events skipped as tombstoned, and entities a tombstone unblocked. */
  tombstones: TombstoneNote;
}

export interface TombstoneNote {
  skipped: number;
  resolved: { entity: string; seq: number; released: number[] }[];
}

export interface ParkedNote {
  seq: number;
  subject: string;
  entity: string;
  reason: string;
}

type Decoded = { d: Delivery; entity: string; event?: StoredEvent; error?: unknown };

/** The stream and epoch of the shard being applied: what tombstones name. */
function logOf(deps: ProjectorDeps, shard: number): LogRef {
  const s = deps.shards.find((x) => x.shard === shard) ?? deps.shards[0]!;
  return { stream: s.stream, epoch: s.epoch };
}

/**
 * Tombstone handling shared by both paths (tombstones.ts): whether the
 * event is tombstoned (skip it), and, for a `log.tombstoned` event, record
 * it and unblock its entity when the event it names blocked it here.
 */
async function onTombstone(
  trx: Transaction<Database>,
  projection: Projection,
  options: ApplyOptions,
  log: LogRef,
  item: Decoded,
  t: Tombstones,
): Promise<void> {
  const tomb = item.event ? tombstoneIn(item.event, log) : null;
  if (!tomb) return;
  await recordTombstone(trx, log, item.d.subject, item.d.seq, tomb);
  t.dead.add(tomb.data.seq);
  if (!t.blocked.has(item.entity)) return;
  const r = await resolveTombstoned(trx, projection, options.shard, item.entity, t.dead);
  if (!r.blocked) t.blocked.delete(item.entity);
  if (r.resolved || r.released.length > 0) t.note.resolved.push({ entity: item.entity, seq: tomb.data.seq, released: r.released });
}

interface Tombstones {
  dead: Set<number>;
  blocked: Set<string>;
  note: TombstoneNote;
}

/**
 * Applies deliveries (in log order) and advances the checkpoint in one
 * transaction. Fast path: one `apply` for the whole batch. If that fails for
 * a reason that is not transient, the batch is replayed event by event (a
 * savepoint each) to find the culprit: events before it commit, it is either
 * parked (delivered `maxDeliveries` times) or left for a later retry, and
 * events of an entity with a parked event are held behind it. An event that
 * no schema version can read is parked at once: retrying cannot fix it, a
 * new upcaster and a re-drive can.
 */
export async function applyDeliveries(deps: ProjectorDeps, projection: Projection, deliveries: Delivery[], options: ApplyOptions): Promise<ApplyResult> {
  const decoded: Decoded[] = deliveries.map((d) => {
    const entity = entityOf(d.subject);
    try {
      return { d, entity, event: { seq: d.seq, subject: d.subject, event: d.event ?? decodeEvent(d.data) } };
    } catch (error) {
      return { d, entity, error };
    }
  });
  const log = logOf(deps, options.shard);
  try {
    return await inSchema(deps.db, options.schema, (trx) => applyTogether(trx, projection, decoded, options, log));
  } catch (err) {
    if (err instanceof CheckpointMoved || isTransient(err)) throw err;
  }
  return inSchema(deps.db, options.schema, (trx) => applyOneByOne(trx, projection, decoded, options, log));
}

/**
 * The checkpoint (locked for the transaction), the entities a parked event blocks, and which of the batch's
 * events above the checkpoint are tombstoned: one round trip instead of three, as every batch starts with it.
 * With `advanceTo`, the same statement also moves the checkpoint there from `options.expectedCheckpoint`
 * (compare-and-set, as advanceCheckpoint): the caller commits every event up to it or rolls all back, so the
 * batch needs no statement of its own for it at the end.
 */
async function begin(trx: Transaction<Database>, projection: Projection, options: ApplyOptions, log: LogRef, batch: Decoded[], advanceTo?: number) {
  let first = batch.length > 0 ? Infinity : 0;
  let last = batch.length > 0 ? -Infinity : 0;
  for (const i of batch) {
    first = Math.min(first, i.d.seq);
    last = Math.max(last, i.d.seq);
  }
  const expected = options.expectedCheckpoint;
  if (advanceTo !== undefined && expected !== undefined) {
    const { rows } = await sql<{ moved: boolean; actual: string | null; blocked: string[]; dead: string[] }>`${PREPARED}
      with advanced as (
        update projector_checkpoints set seq = ${advanceTo}, updated_at = now()
        where projector = ${projection.name} and shard = ${options.shard} and seq = ${expected}
        returning 1)
      select not exists (select 1 from advanced) as moved,
        (select seq from projector_checkpoints where projector = ${projection.name} and shard = ${options.shard}) as actual,
        array(select distinct p.entity from parked_events p
          where p.projector = ${projection.name} and p.shard = ${options.shard} and p.status in ('parked', 'held')) as blocked,
        array(select t.seq from public.log_tombstones t
          where t.stream = ${log.stream} and t.epoch = ${log.epoch} and t.seq between greatest(${first}::bigint, ${expected + 1}::bigint) and ${last}::bigint) as dead`.execute(
      trx,
    );
    const row = rows[0]!;
    // No row at all is a move too: the runner creates it before its first batch.
    if (row.moved) throw new CheckpointMoved(projection.name, expected, row.actual === null ? -1 : Number(row.actual));
    return { checkpoint: expected, blocked: new Set(row.blocked), dead: new Set(row.dead.map(Number)) };
  }
  const { rows } = await sql<{ seq: string; blocked: string[]; dead: string[] }>`${PREPARED}
    select c.seq,
      array(select distinct p.entity from parked_events p
        where p.projector = ${projection.name} and p.shard = ${options.shard} and p.status in ('parked', 'held')) as blocked,
      array(select t.seq from public.log_tombstones t
        where t.stream = ${log.stream} and t.epoch = ${log.epoch} and t.seq between greatest(${first}::bigint, c.seq + 1) and ${last}::bigint) as dead
    from projector_checkpoints c where c.projector = ${projection.name} and c.shard = ${options.shard}
    for update of c`.execute(trx);
  const row = rows[0];
  const checkpoint = row ? Number(row.seq) : 0;
  if (expected !== undefined && checkpoint !== expected) {
    throw new CheckpointMoved(projection.name, expected, checkpoint);
  }
  if (!row) {
    // No checkpoint row (the runner creates it before its first batch): what the separate reads would give.
    const dead = await tombstonedAmong(
      trx,
      log,
      batch.filter((i) => i.d.seq > 0).map((i) => i.d.seq),
    );
    return { checkpoint, blocked: new Set<string>(), dead };
  }
  return { checkpoint, blocked: new Set(row.blocked), dead: new Set(row.dead.map(Number)) };
}

async function applyTogether(trx: Transaction<Database>, projection: Projection, batch: Decoded[], options: ApplyOptions, log: LogRef): Promise<ApplyResult> {
  // Every event of the batch is handled here or the transaction fails: the checkpoint can move to its last at once.
  const end = batch[batch.length - 1]?.d.seq;
  const advanceTo = end !== undefined && options.expectedCheckpoint !== undefined && end > options.expectedCheckpoint ? end : undefined;
  const { checkpoint, blocked, dead } = await begin(trx, projection, options, log, batch, advanceTo);
  const result = emptyResult(checkpoint);
  let toApply: StoredEvent[] = [];
  const parkRows: ParkRow[] = [];
  const t: Tombstones = { dead, blocked, note: result.tombstones };
  let parkedInserted = 0;
  for (const item of batch) {
    if (item.d.seq <= checkpoint) continue;
    if (t.dead.has(item.d.seq)) {
      t.note.skipped++;
      continue;
    }
    if (item.event?.event.type === 'log.tombstoned') {
      // What the tombstone resolves must be in the parked table, and an event it names that waits in this batch is dropped.
      await insertParked(trx, parkRows.slice(parkedInserted));
      parkedInserted = parkRows.length;
      await onTombstone(trx, projection, options, log, item, t);
      toApply = toApply.filter((e) => !t.dead.has(e.seq));
    }
    if (blocked.has(item.entity)) {
      parkRows.push(parkRow(projection, options, item, 'held', 'held behind a parked event of the same entity'));
      result.held++;
    } else if (!item.event) {
      parkRows.push(parkRow(projection, options, item, 'parked', `undecodable: ${describeFailure(item.error)}`));
      blocked.add(item.entity);
    } else {
      toApply.push(item.event);
    }
  }
  if (toApply.length > 0) await projection.apply(trx, toApply);
  await insertParked(trx, parkRows.slice(parkedInserted));
  result.parked = parkRows.filter((r) => r.status === 'parked' && !t.dead.has(r.seq)).map(note);
  result.applied = toApply.length;
  result.handled = batch.length;
  const last = batch[batch.length - 1]?.d.seq ?? checkpoint;
  if (last > checkpoint && advanceTo === undefined) await advanceCheckpoint(trx, projection.name, options.shard, checkpoint, last);
  result.checkpoint = Math.max(checkpoint, last);
  return result;
}

async function applyOneByOne(trx: Transaction<Database>, projection: Projection, batch: Decoded[], options: ApplyOptions, log: LogRef): Promise<ApplyResult> {
  const { checkpoint, blocked, dead } = await begin(trx, projection, options, log, batch);
  const result = emptyResult(checkpoint);
  const t: Tombstones = { dead, blocked, note: result.tombstones };
  let last = checkpoint;
  for (const item of batch) {
    if (item.d.seq > checkpoint) {
      if (!t.dead.has(item.d.seq)) await onTombstone(trx, projection, options, log, item, t);
      if (t.dead.has(item.d.seq)) {
        t.note.skipped++;
      } else if (blocked.has(item.entity)) {
        await insertParked(trx, [parkRow(projection, options, item, 'held', 'held behind a parked event of the same entity')]);
        result.held++;
      } else if (!item.event) {
        const row = parkRow(projection, options, item, 'parked', `undecodable: ${describeFailure(item.error)}`);
        await insertParked(trx, [row]);
        result.parked.push(note(row));
        blocked.add(item.entity);
      } else {
        await sql`savepoint parley_event`.execute(trx);
        try {
          await projection.apply(trx, [item.event]);
          await sql`release savepoint parley_event`.execute(trx);
          result.applied++;
        } catch (err) {
          await sql`rollback to savepoint parley_event`.execute(trx);
          if (isTransient(err)) throw err;
          if (item.d.deliveries < options.maxDeliveries) {
            result.retryReason = err;
            break;
          }
          const row = parkRow(projection, options, item, 'parked', describeFailure(err));
          await insertParked(trx, [row]);
          result.parked.push(note(row));
          blocked.add(item.entity);
        }
      }
      last = item.d.seq;
    }
    result.handled++;
  }
  if (last > checkpoint) await advanceCheckpoint(trx, projection.name, options.shard, checkpoint, last);
  result.checkpoint = last;
  return result;
}

function emptyResult(checkpoint: number): ApplyResult {
  return { handled: 0, checkpoint, applied: 0, parked: [], held: 0, retryReason: undefined, tombstones: { skipped: 0, resolved: [] } };
}

/** A row of `parked_events` as the runner writes it (the table's own columns, with a numeric seq). */
type ParkRow = Omit<ParkedEventsTable, 'id' | 'seq' | 'status' | 'parked_at' | 'resolved_at'> & { seq: number; status: 'parked' | 'held' };

function parkRow(projection: Projection, options: ApplyOptions, item: Decoded, status: 'parked' | 'held', reason: string): ParkRow {
  return {
    projector: projection.name,
    shard: options.shard,
    seq: item.d.seq,
    subject: item.d.subject,
    entity: item.entity,
    event_type: item.event?.event.type ?? null,
    reason,
    payload: Buffer.from(item.d.data),
    attempts: item.d.deliveries,
    status,
  };
}

function note(row: ParkRow): ParkedNote {
  return { seq: row.seq, subject: row.subject, entity: row.entity, reason: row.reason };
}

async function insertParked(trx: Transaction<Database>, rows: ParkRow[]): Promise<void> {
  if (rows.length === 0) return;
  // A redelivery of an event parked before its checkpoint commit reached the server's ack changes nothing.
  await trx
    .insertInto('parked_events')
    .values(rows)
    .onConflict((oc) => oc.columns(['projector', 'shard', 'seq']).doNothing())
    .execute();
}
