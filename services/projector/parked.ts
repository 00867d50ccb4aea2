import { sql, type Kysely } from 'kysely';
import type { Database, ParkedEventsTable } from '../read-store/schema.js';
import { decodeEvent, type StoredEvent } from '../event-log/event-store.js';
import { readCheckpoint } from '../projection/checkpoint.js';
import { describeFailure } from '../projection/failure.js';
import type { Projection, ProjectorDeps } from '../projection/projection.js';
import type { Subjects } from '../../contracts/index.js';

type Status = ParkedEventsTable['status'];
const OPEN: Status[] = ['parked', 'held'];

export interface ParkedView {
  id: number;
  projector: string;
  /** The shard whose stream `seq` is of. */
  shard: number;
  seq: number;
  subject: string;
  entity: string;
  eventType: string | null;
  status: Status;
  reason: string;
  attempts: number;
  parkedAt: string;
  resolvedAt: string | null;
  /** The stored event as text (only when asked for). */
  payload?: string;
}

export interface ParkedFilter {
  projector?: string;
  /** `open` (parked and held, the default), `all`, or one status. */
  status?: 'open' | 'all' | Status;
  entity?: string;
  limit?: number;
  withPayload?: boolean;
}

export async function listParked(db: Kysely<Database>, filter: ParkedFilter = {}): Promise<ParkedView[]> {
  let q = db
    .selectFrom('parked_events')
    .selectAll()
    .orderBy('projector')
    .orderBy('shard')
    .orderBy('seq')
    .limit(filter.limit ?? 1000);
  if (filter.projector) q = q.where('projector', '=', filter.projector);
  if (filter.entity) q = q.where('entity', '=', filter.entity);
  const status = filter.status ?? 'open';
  if (status === 'open') q = q.where('status', 'in', OPEN);
  else if (status !== 'all') q = q.where('status', '=', status);
  const rows = await q.execute();
  return rows.map((r) => ({
    id: Number(r.id),
    projector: r.projector,
    shard: r.shard,
    seq: Number(r.seq),
    subject: r.subject,
    entity: r.entity,
    eventType: r.event_type,
    status: r.status,
    reason: r.reason,
    attempts: r.attempts,
    parkedAt: r.parked_at.toISOString(),
    resolvedAt: r.resolved_at?.toISOString() ?? null,
    ...(filter.withPayload ? { payload: r.payload.toString('utf8') } : {}),
  }));
}

/** A parked event still fails: nothing was applied, the entity stays blocked, and the row records why. */
export class RedriveFailed extends Error {
  constructor(
    readonly entity: string,
    readonly seq: number,
    reason: string,
  ) {
    super(`re-drive of ${entity} failed at seq ${seq}: ${reason}`);
    this.name = 'RedriveFailed';
  }
}

export interface RedriveResult {
  entity: string;
  applied: number[];
}

/**
 * Applies an entity's open parked events in log order through the same
 * projection, marks them re-driven and so unblocks the entity: all in one
 * transaction, or nothing. The projector's checkpoint row is locked first,
 * so a running projector's batch waits and then sees the entity unblocked:
 * none of its events can slip in between.
 */
export async function redrive(deps: ProjectorDeps, projection: Projection, entity: string): Promise<RedriveResult> {
  const shard = shardOfEntity(deps.subjects, entity);
  let failing: { id: number; seq: number; reason: string } | null = null;
  try {
    return await deps.db.transaction().execute(async (trx) => {
      await readCheckpoint(trx, projection.name, shard, true);
      const rows = await trx
        .selectFrom('parked_events')
        .select(['id', 'seq', 'subject', 'payload'])
        .where('projector', '=', projection.name)
        .where('shard', '=', shard)
        .where('entity', '=', entity)
        .where('status', 'in', OPEN)
        .orderBy('seq')
        .forUpdate()
        .execute();
      for (const row of rows) {
        let event: StoredEvent;
        try {
          event = { seq: Number(row.seq), subject: row.subject, event: decodeEvent(row.payload) };
          await projection.apply(trx, [event]);
        } catch (err) {
          failing = { id: Number(row.id), seq: Number(row.seq), reason: describeFailure(err) };
          throw err;
        }
      }
      if (rows.length > 0) {
        await trx
          .updateTable('parked_events')
          .set({ status: 'redriven', resolved_at: sql`now()` })
          .where(
            'id',
            'in',
            rows.map((r) => r.id),
          )
          .execute();
      }
      return { entity, applied: rows.map((r) => Number(r.seq)) };
    });
  } catch (err) {
    const f = failing as { id: number; seq: number; reason: string } | null;
    if (!f) throw err;
    await deps.db
      .updateTable('parked_events')
      .set((eb) => ({ attempts: eb('attempts', '+', 1), reason: `re-drive failed: ${f.reason}` }))
      .where('id', '=', String(f.id))
      .execute();
    throw new RedriveFailed(entity, f.seq, f.reason);
  }
}

/**
 * The shard whose parked rows and checkpoint an entity's re-drive works on: an entity (`conv:<id>`, `user:<id>`)
 * lives on one shard; a unit that is a bare subject (entityOf in projection.ts) is its subject's.
 */
export function shardOfEntity(subjects: Subjects, entity: string): number {
  const m = /^(conv|user):(.+)$/.exec(entity);
  return m ? subjects.shardOf(m[2]!) : (subjects.shardOfSubject(entity) ?? 0);
}

/** Entities with open parked events, oldest first (by sequence within a shard; shards in order). */
export async function blockedEntities(db: Kysely<Database>, projector: string): Promise<string[]> {
  const rows = await db
    .selectFrom('parked_events')
    .select('entity')
    .select((eb) => [eb.fn.min('shard').as('shard'), eb.fn.min('seq').as('first')])
    .where('projector', '=', projector)
    .where('status', 'in', OPEN)
    .groupBy('entity')
    .orderBy('shard')
    .orderBy('first')
    .execute();
  return rows.map((r) => r.entity);
}

/**
 * Gives up on one parked event: it is never applied. Events held behind it
 * stay held until the entity is re-driven (so the operator decides when the
 * rest goes in). Returns false when the row is not open.
 */
export async function discard(db: Kysely<Database>, id: number): Promise<boolean> {
  const r = await db
    .updateTable('parked_events')
    .set({ status: 'discarded', resolved_at: sql`now()` })
    .where('id', '=', String(id))
    .where('status', 'in', OPEN)
    .executeTakeFirst();
  return r.numUpdatedRows === 1n;
}
