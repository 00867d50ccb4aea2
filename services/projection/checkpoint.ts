import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../read-store/schema.js';

type Db = Kysely<Database> | Transaction<Database>;

export interface Checkpoint {
  seq: number;
  epoch: string;
}

/**
 * The checkpoint is not where the runner expected it: an operator reset or
 * rebuilt the projector, or another runner advanced it. Never the event's
 * fault, so it is never a reason to park anything: the runner reopens from
 * the checkpoint instead.
 */
export class CheckpointMoved extends Error {
  constructor(projector: string, expected: number, actual: number) {
    super(`checkpoint of ${projector} is at ${actual}, expected ${expected}`);
    this.name = 'CheckpointMoved';
  }
}

/**
 * Runs `fn` in one transaction whose unqualified table names resolve in
 * `schema`: the same projection code writes the live tables (no schema) or
 * a rebuild's shadow copies, checkpoint and parked table included.
 */
export async function inSchema<T>(db: Kysely<Database>, schema: string | undefined, fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    // A shadow schema is rebuilt from the log if it is lost: its commits need not wait for the disk.
    if (schema) await sql`select set_config('search_path', ${quoteIdent(schema)}, true), set_config('synchronous_commit', 'off', true)`.execute(trx);
    return fn(trx);
  });
}

export function quoteIdent(name: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`unsafe identifier ${JSON.stringify(name)}`);
  return `"${name}"`;
}

export async function ensureCheckpointRow(db: Db, projector: string, shard: number, epoch: string, seq = 0): Promise<void> {
  await db
    .insertInto('projector_checkpoints')
    .values({ projector, shard, epoch, seq })
    .onConflict((oc) => oc.doNothing())
    .execute();
}

export async function readCheckpoint(db: Db, projector: string, shard: number, forUpdate = false): Promise<Checkpoint> {
  let query = db.selectFrom('projector_checkpoints').select(['seq', 'epoch']).where('projector', '=', projector).where('shard', '=', shard);
  if (forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return { seq: row ? Number(row.seq) : 0, epoch: row?.epoch ?? '' };
}

/**
 * Compare-and-set: moves the checkpoint from `from` to `to` or throws. Two
 * writers can never both advance it, and a replay below it changes nothing.
 */
export async function advanceCheckpoint(trx: Transaction<Database>, projector: string, shard: number, from: number, to: number): Promise<void> {
  const advanced = await trx
    .updateTable('projector_checkpoints')
    .set({ seq: to, updated_at: sql`now()` })
    .where('projector', '=', projector)
    .where('shard', '=', shard)
    .where('seq', '=', String(from))
    .executeTakeFirst();
  if (advanced.numUpdatedRows !== 1n) throw new CheckpointMoved(projector, from, -1);
}
