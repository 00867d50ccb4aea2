import { sql } from 'kysely';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureCheckpointRow, inSchema, quoteIdent, readCheckpoint, type Checkpoint } from '../projection/checkpoint.js';
import { deleteDurable } from '../projection/consumer.js';
import type { Projection, ProjectorDeps } from '../projection/projection.js';
import type { ReplayResult } from './replay.js';
import { replayShards } from './replay-shards.js';
import { projectorConsumerName } from '../projection/runner.js';
import { createShadowSchema, dropSchema, finishShadowTables, swapIntoPublic, tableHash } from './shadow.js';

export interface RebuildOptions {
  /** First stream sequence replayed into the empty shadow tables. Default 1: the whole log. One shard only. */
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
  /** Shard 0's checkpoint after the swap (the checkpoint of a one-shard deployment). */
  checkpoint: number;
  /** Every shard's checkpoint after the swap, index k for shard k. */
  checkpoints: number[];
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
 *    With several shards, every shard is replayed (a checkpoint row per
 *    shard in the shadow; conversations first, then users: replay-shards.ts).
 * 2. The swap transaction locks the live checkpoint rows (every shard's). That pauses the
 *    live runner (its next batch waits for the row) without stopping reads.
 *    The shadow is brought to exactly the live checkpoint, both sides are
 *    hashed and compared, the tables are exchanged by ALTER TABLE ... SET
 *    SCHEMA, the parked events are taken over, and the commit releases the
 *    live runner, which continues on the new tables from the same position.
 */
export async function rebuild(deps: ProjectorDeps, projection: Projection, options: RebuildOptions): Promise<RebuildReport> {
  const tables = projection.tables ?? [];
  if (tables.length === 0) throw new Error(`projector ${projection.name} declares no tables; it cannot be rebuilt`);
  const shards = deps.shards;
  // A sequence is one shard's: a start position for every shard at once would mean nothing.
  if (options.fromSeq !== undefined && options.fromSeq > 1 && shards.length > 1)
    throw new Error(`--from-seq is a sequence of one shard's stream; with ${shards.length} shards a rebuild replays every shard from its start`);
  const id = Date.now();
  const shadow = `shadow_${id}`;
  const retired = `retired_${id}`;
  const progress = options.onProgress ?? (() => undefined);
  const replayOptions = { schema: shadow, maxDeliveries: options.maxDeliveries, ...(options.batchSize ? { batchSize: options.batchSize } : {}) };
  const deferredIndexes = await createShadowSchema(deps.db, shadow, tables);
  progress('shadow schema created', { schema: shadow, tables });
  let comparison: TableComparison[] | null = null;
  try {
    const start = Math.max(0, (options.fromSeq ?? 1) - 1);
    await inSchema(deps.db, shadow, async (trx) => {
      for (const shard of shards) await ensureCheckpointRow(trx, projection.name, shard.shard, shard.epoch, start);
    });
    const started = performance.now();
    const replayed = await replayShards(deps, projection, {
      ...replayOptions,
      from: shards.map(() => start),
      onProgress: (p) => progress('replaying', p),
    });
    const replaySeconds = (performance.now() - started) / 1000;
    progress('replayed', { ...replayed, seconds: replaySeconds });
    // Before the swap transaction, so the live projector is not paused while they build.
    await finishShadowTables(deps.db, shadow, tables, deferredIndexes);
    progress('indexes built', { indexes: deferredIndexes.length });

    const deadline = Date.now() + (options.catchUpTimeoutMs ?? 60_000);
    for (;;) {
      const outcome = await deps.db.transaction().execute(async (trx) => {
        await sql`select set_config('lock_timeout', ${`${options.lockTimeoutMs ?? 5000}ms`}, true)`.execute(trx);
        // Every shard's live checkpoint is locked (in shard order, as a runner only ever locks its own row): the
        // live runners all pause, so the tables are compared and swapped at one position of every shard.
        const live: Checkpoint[] = [];
        const targets: number[] = [];
        for (const shard of shards) {
          await ensureCheckpointRow(trx, projection.name, shard.shard, shard.epoch);
          live.push(await readCheckpoint(trx, projection.name, shard.shard, true));
          targets.push((await inSchema(deps.db, shadow, (t) => readCheckpoint(t, projection.name, shard.shard))).seq);
        }
        const sameLog = shards.map((shard) => live[shard.shard]!.epoch === shard.epoch);
        const ahead = shards.find((shard) => sameLog[shard.shard] && targets[shard.shard]! > live[shard.shard]!.seq);
        if (ahead && options.verify !== false) return { kind: 'wait' as const, position: targets[ahead.shard]!, shard: ahead.shard };
        // The shards the live projector is ahead on are brought to its position (the others stay: none is behind).
        const until = shards.map((shard) => (sameLog[shard.shard] ? Math.max(targets[shard.shard]!, live[shard.shard]!.seq) : targets[shard.shard]!));
        if (until.some((u, k) => u > targets[k]!)) {
          const more = await replayShards(deps, projection, { ...replayOptions, from: [...targets], until });
          replayed.applied += more.applied;
          replayed.parked += more.parked;
          replayed.held += more.held;
          until.forEach((u, k) => (targets[k] = u));
        }
        replayed.checkpoint = targets[0]!;
        // Live tables from a recreated stream (any shard) are not what this log gives: nothing to compare with.
        if (options.verify !== false && sameLog.every(Boolean)) {
          comparison = await compare(trx, shadow, tables);
          if (comparison.some((c) => !c.equal)) throw new RebuildMismatch(comparison, shadow);
        }
        await swapIntoPublic(trx, shadow, retired, tables);
        for (const shard of shards) {
          await takeOverParked(trx, shadow, projection.name, shard.shard);
          await trx
            .updateTable('projector_checkpoints')
            .set({ seq: targets[shard.shard]!, epoch: shard.epoch, updated_at: sql`now()` })
            .where('projector', '=', projection.name)
            .where('shard', '=', shard.shard)
            .execute();
        }
        return { kind: 'swapped' as const, checkpoints: targets, sameLog };
      });
      if (outcome.kind === 'swapped') {
        // A checkpoint from another stream epoch had the live runner refuse to start; its consumer belongs to the old position.
        for (const shard of shards)
          if (!outcome.sameLog[shard.shard])
            await deleteDurable(deps.nats.jsm, shard.stream, projectorConsumerName(deps.subjects.namespace, projection.name, shard.shard));
        progress('swapped', { checkpoint: outcome.checkpoints[0], ...(shards.length > 1 ? { checkpoints: outcome.checkpoints } : {}) });
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
          checkpoint: outcome.checkpoints[0]!,
          checkpoints: outcome.checkpoints,
        };
      }
      if (Date.now() > deadline)
        throw new Error(
          `the live ${projection.name} projector stays behind the rebuilt position ${outcome.position}${shards.length > 1 ? ` of shard ${outcome.shard}` : ''}; is it running? (or swap with --no-verify)`,
        );
      progress('waiting for the live projector to reach the rebuilt position', {
        position: outcome.position,
        ...(shards.length > 1 ? { shard: outcome.shard } : {}),
      });
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
