import { sql } from 'kysely';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureCheckpointRow, inSchema, quoteIdent, readCheckpoint } from '../projection/checkpoint.js';
import { deleteDurable } from '../projection/consumer.js';
import type { Projection, ProjectorDeps } from '../projection/projection.js';
import { replay, type ReplayResult } from './replay.js';
import { projectorConsumerName } from '../projection/runner.js';
import { createShadowSchema, dropSchema, finishShadowTables, swapIntoPublic, tableHash } from './shadow.js';

export interface RebuildOptions {
  /** First stream sequence replayed into the empty shadow tables. Default 1: the whole log. */
  fromSeq?: number;
  /** Compare content hashes with the live tables before swapping, and refuse to swap when they differ. Default true. */
  verify?: boolean;
  /** Keep the replaced tables in `retired_<n>` instead of dropping them. */
  keepOld?: boolean;
  batchSize?: number;
  maxDeliveries: number;
  /** How long the swap may wait for a lock (a long query on a live table) before retrying. Default 5 s. */
  lockTimeoutMs?: number;
  /** How long to wait for a live projector that lags behind the rebuild. Default 60 s. */
  catchUpTimeoutMs?: number;
  onProgress?: (step: string, fields?: Record<string, unknown>) => void;
}

export interface TableComparison {
  table: string;
  liveRows: number;
  shadowRows: number;
  liveMd5: string;
  shadowMd5: string;
  equal: boolean;
}

export interface RebuildReport {
  projector: string;
  shadowSchema: string;
  /** Where the replaced tables are, when kept. */
  retiredSchema: string | null;
  replayed: ReplayResult;
  replaySeconds: number;
  eventsPerSecond: number;
  /** Null when verification was skipped (asked, or the live tables come from a recreated stream). */
  comparison: TableComparison[] | null;
  checkpoint: number;
}

/** The live and rebuilt tables differ: nothing was swapped, and the shadow schema is kept for inspection. */
export class RebuildMismatch extends Error {
  constructor(
    readonly comparison: TableComparison[],
    readonly shadowSchema: string,
  ) {
    super(
      `rebuilt tables differ from the live ones (${comparison
        .filter((c) => !c.equal)
        .map((c) => c.table)
        .join(', ')}); nothing swapped, see schema ${shadowSchema}`,
    );
    this.name = 'RebuildMismatch';
  }
}

/**
 * Rebuilds a projection from the log into a shadow schema while the live
 * tables keep serving, then swaps the shadow tables in atomically.
 *
 * 1. `shadow_<n>` gets empty copies of the projection's tables and its own
 *    checkpoint and parked tables; the projection is replayed into it with
 *    an ordered consumer (replay.ts): no durable consumer, no acks, nothing
 *    published. Plain indexes are built after that bulk load.
 * 2. The swap transaction locks the live checkpoint row. That pauses the
 *    live runner (its next batch waits for the row) without stopping reads.
 *    The shadow is brought to exactly the live checkpoint, both sides are
 *    hashed and compared, the tables are exchanged by ALTER TABLE ... SET
 *    SCHEMA, the parked events are taken over, and the commit releases the
 *    live runner, which continues on the new tables from the same position.
 */
export async function rebuild(deps: ProjectorDeps, projection: Projection, options: RebuildOptions): Promise<RebuildReport> {
  const tables = projection.tables ?? [];
  if (tables.length === 0) throw new Error(`projector ${projection.name} declares no tables; it cannot be rebuilt`);
  const shard = deps.shards[0]!;
  const id = Date.now();
  const shadow = `shadow_${id}`;
  const retired = `retired_${id}`;
  const progress = options.onProgress ?? (() => undefined);
  const replayOptions = { schema: shadow, maxDeliveries: options.maxDeliveries, ...(options.batchSize ? { batchSize: options.batchSize } : {}) };

  const deferredIndexes = await createShadowSchema(deps.db, shadow, tables);
  progress('shadow schema created', { schema: shadow, tables });
  let comparison: TableComparison[] | null = null;
  try {
    await inSchema(deps.db, shadow, (trx) => ensureCheckpointRow(trx, projection.name, shard.shard, shard.epoch, Math.max(0, (options.fromSeq ?? 1) - 1)));
    const started = performance.now();
    const replayed = await replay(deps, projection, { ...replayOptions, onProgress: (p) => progress('replaying', p) });
    const replaySeconds = (performance.now() - started) / 1000;
    progress('replayed', { ...replayed, seconds: replaySeconds });
    // Before the swap transaction, so the live projector is not paused while they build.
    await finishShadowTables(deps.db, shadow, tables, deferredIndexes);
    progress('indexes built', { indexes: deferredIndexes.length });

    const deadline = Date.now() + (options.catchUpTimeoutMs ?? 60_000);
    for (;;) {
      const outcome = await deps.db.transaction().execute(async (trx) => {
        await sql`select set_config('lock_timeout', ${`${options.lockTimeoutMs ?? 5000}ms`}, true)`.execute(trx);
        await ensureCheckpointRow(trx, projection.name, shard.shard, shard.epoch);
        const live = await readCheckpoint(trx, projection.name, shard.shard, true);
        const sameLog = live.epoch === shard.epoch;
        let target = (await inSchema(deps.db, shadow, (t) => readCheckpoint(t, projection.name, shard.shard))).seq;
        if (sameLog && target > live.seq && options.verify !== false) return { kind: 'wait' as const, position: target };
        if (sameLog && target < live.seq) {
          const more = await replay(deps, projection, { ...replayOptions, untilSeq: live.seq });
          replayed.applied += more.applied;
          replayed.parked += more.parked;
          replayed.held += more.held;
          target = live.seq;
        }
        replayed.checkpoint = target;
        if (options.verify !== false && sameLog) {
          comparison = await compare(trx, shadow, tables);
          if (comparison.some((c) => !c.equal)) throw new RebuildMismatch(comparison, shadow);
        }
        await swapIntoPublic(trx, shadow, retired, tables);
        await takeOverParked(trx, shadow, projection.name, shard.shard);
        await trx
          .updateTable('projector_checkpoints')
          .set({ seq: target, epoch: shard.epoch, updated_at: sql`now()` })
          .where('projector', '=', projection.name)
          .where('shard', '=', shard.shard)
          .execute();
        return { kind: 'swapped' as const, checkpoint: target, sameLog };
      });
      if (outcome.kind === 'swapped') {
        // A checkpoint from another stream epoch had the live runner refuse to start; its consumer belongs to the old position.
        if (!outcome.sameLog) await deleteDurable(deps.nats.jsm, shard.stream, projectorConsumerName(deps.subjects.namespace, projection.name));
        progress('swapped', { checkpoint: outcome.checkpoint });
        await dropSchema(deps.db, shadow);
        if (!options.keepOld) await dropSchema(deps.db, retired);
        return {
          projector: projection.name,
          shadowSchema: shadow,
          retiredSchema: options.keepOld ? retired : null,
          replayed,
          replaySeconds,
          eventsPerSecond: Math.round(replayed.applied / Math.max(replaySeconds, 1e-6)),
          comparison,
          checkpoint: outcome.checkpoint,
        };
      }
      if (Date.now() > deadline)
        throw new Error(
          `the live ${projection.name} projector stays behind the rebuilt position ${outcome.position}; is it running? (or swap with --no-verify)`,
        );
      progress('waiting for the live projector to reach the rebuilt position', { position: outcome.position });
      await sleep(200);
    }
  } catch (err) {
    // A mismatch keeps the shadow for inspection; any other failure leaves nothing behind.
    if (!(err instanceof RebuildMismatch)) await dropSchema(deps.db, shadow).catch(() => undefined);
    throw err;
  }
}

async function compare(trx: Parameters<typeof tableHash>[0], shadow: string, tables: readonly string[]): Promise<TableComparison[]> {
  const out: TableComparison[] = [];
  for (const table of tables) {
    const [live, rebuilt] = [await tableHash(trx, 'public', table), await tableHash(trx, shadow, table)];
    out.push({
      table,
      liveRows: live.rows,
      shadowRows: rebuilt.rows,
      liveMd5: live.md5,
      shadowMd5: rebuilt.md5,
      equal: live.md5 === rebuilt.md5 && live.rows === rebuilt.rows,
    });
  }
  return out;
}

/** The rebuilt state's parked events replace the live open ones; resolved history the rebuild did not park again is kept. */
async function takeOverParked(trx: Parameters<typeof tableHash>[0], shadow: string, projector: string, shard: number): Promise<void> {
  const s = sql.raw(`${quoteIdent(shadow)}.parked_events`);
  await sql`delete from public.parked_events p where p.projector = ${projector} and p.shard = ${shard}
    and (p.status in ('parked', 'held') or exists (select 1 from ${s} x where x.projector = p.projector and x.shard = p.shard and x.seq = p.seq))`.execute(trx);
  await sql`insert into public.parked_events (projector, shard, seq, subject, entity, event_type, reason, payload, attempts, status, parked_at, resolved_at)
    select projector, shard, seq, subject, entity, event_type, reason, payload, attempts, status, parked_at, resolved_at from ${s}
    where projector = ${projector} and shard = ${shard}`.execute(trx);
}
