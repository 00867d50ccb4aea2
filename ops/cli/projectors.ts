import { sql } from 'kysely';
import { readCheckpoint } from '../../services/projection/checkpoint.js';
import { consumerLag, deleteDurable } from '../../services/projection/consumer.js';
import { openParkedCounts } from '../../services/projection/parked-counts.js';
import { rebuild, RebuildMismatch } from '../../services/projector/rebuild.js';
import { projectorConsumerName } from '../../services/projection/runner.js';
import { dropSchema, leftoverSchemas } from '../../services/projector/shadow.js';
import { intOption, parse, printJson, UsageError, type CommandGroup } from './command.js';
import { withOps, type OpsContext } from './context.js';
import type { ShardInfo } from '../../services/event-log/streams.js';
import { checkKnown, isRebuildable, projectorNames, rebuildableProjection } from './projections.js';

/**
 * One row per projector and shard (one shard: exactly one row per projector, shard 0). Sequences, lag and the
 * consumer are the shard's own; parked and held counts are the projector's over every shard, as `parked list` shows.
 */
async function status(ctx: OpsContext) {
  const out = [];
  // Every projection the platform runs (started or not), and any other runner that keeps a checkpoint here.
  const rows = await ctx.db.selectFrom('projector_checkpoints').select('projector').execute();
  const names = [...new Set([...projectorNames(ctx.subjects), ...rows.map((r) => r.projector)])];
  const lastSeqs = await Promise.all(ctx.shards.map(async (s) => (await ctx.nats.jsm.streams.info(s.stream)).state.last_seq));
  for (const name of names) {
    const open = await openParkedCounts(ctx.db, name);
    for (const shard of ctx.shards) {
      const row = await ctx.db
        .selectFrom('projector_checkpoints')
        .selectAll()
        .where('projector', '=', name)
        .where('shard', '=', shard.shard)
        .executeTakeFirst();
      const consumer = projectorConsumerName(ctx.subjects.namespace, name, shard.shard);
      const lag = await consumerLag(ctx.nats.jsm, shard.stream, consumer).catch(() => null);
      out.push({
        projector: name,
        shard: shard.shard,
        stream: shard.stream,
        consumer,
        checkpoint: row ? Number(row.seq) : null,
        checkpointUpdatedAt: row?.updated_at ?? null,
        epochMatchesStream: row ? row.epoch === shard.epoch : null,
        streamLastSeq: lastSeqs[shard.shard]!,
        // The consumer's view: events it still has to hand over or see acknowledged. Null when the consumer does not exist (projector never started, or reset).
        lag,
        parked: open.parked,
        held: open.held,
        // Only a projection with tables can be rebuilt (one with side effects, like the notifier's, declares none).
        rebuildable: isRebuildable(ctx.subjects, name),
      });
    }
  }
  return out;
}

/** The shard a reset moves: `--shard k`, required when the deployment has several (a sequence is one shard's). */
function shardToReset(ctx: OpsContext, value: string | undefined): ShardInfo {
  const k = intOption(value, 'shard');
  if (k === undefined) {
    if (ctx.shards.length > 1)
      throw new UsageError(
        `this deployment has ${ctx.shards.length} shards (STREAM_SHARDS) and a sequence is one shard's: name it with --shard 0..${ctx.shards.length - 1}`,
      );
    return ctx.shards[0]!;
  }
  const shard = ctx.shards[k];
  if (!shard) throw new UsageError(`--shard ${k}: this deployment has shards 0..${ctx.shards.length - 1}`);
  return shard;
}

export const projectors: CommandGroup = {
  summary: 'Postgres projections (the read model, the notifier): lag, rebuild into shadow tables and swap, reset',
  commands: {
    list: {
      usage: '',
      summary: 'every projector (read-model, notifier) with its checkpoint, lag, and parked/held counts (a row per shard)',
      run: async (args, io) => {
        parse(args, {}, 0);
        await withOps(io, async (ctx) => printJson(io, await status(ctx)));
      },
    },
    lag: {
      usage: '',
      summary: 'same as list (the lag per projector and shard is in it)',
      run: async (args, io) => {
        parse(args, {}, 0);
        await withOps(io, async (ctx) => printJson(io, await status(ctx)));
      },
    },
    rebuild: {
      usage: '<projector> [--from-seq N] [--no-verify] [--keep-old] [--batch N]',
      summary:
        'replay the log (every shard) into shadow tables while the live ones serve, compare content hashes, swap atomically (--from-seq: one shard only)',
      run: async (args, io) => {
        const { values, positionals } = parse(
          args,
          { 'from-seq': { type: 'string' }, 'no-verify': { type: 'boolean' }, 'keep-old': { type: 'boolean' }, batch: { type: 'string' } },
          1,
        );
        const fromSeq = intOption(values['from-seq'], 'from-seq');
        const batchSize = intOption(values.batch, 'batch');
        await withOps(io, async (ctx) => {
          const projection = rebuildableProjection(ctx.subjects, positionals[0]!);
          let lastProgress = 0;
          try {
            const report = await rebuild(ctx, projection, {
              maxDeliveries: ctx.config.projector.maxDeliveries,
              verify: !values['no-verify'],
              keepOld: Boolean(values['keep-old']),
              ...(fromSeq !== undefined ? { fromSeq } : {}),
              ...(batchSize ? { batchSize } : {}),
              onProgress: (step, fields) => {
                if (step === 'replaying' && Date.now() - lastProgress < 1000) return;
                lastProgress = Date.now();
                io.err(JSON.stringify({ step, ...fields }));
              },
            });
            printJson(io, report);
          } catch (err) {
            if (err instanceof RebuildMismatch) printJson(io, { swapped: false, shadowSchema: err.shadowSchema, comparison: err.comparison });
            throw err;
          }
        });
      },
    },
    reset: {
      usage: '<projector> --to-seq N [--shard K]',
      summary:
        "move a projector's checkpoint on one shard (events of that shard's stream after N are applied again, idempotently; a running projector follows within a batch); --shard is required with several shards",
      run: async (args, io) => {
        const { values, positionals } = parse(args, { 'to-seq': { type: 'string' }, shard: { type: 'string' } }, 1);
        const to = intOption(values['to-seq'], 'to-seq');
        if (to === undefined) throw new UsageError('--to-seq is required (0 = the start of the log)');
        await withOps(io, async (ctx) => {
          const name = positionals[0]!;
          const shard = shardToReset(ctx, values.shard);
          const exists = await ctx.db.selectFrom('projector_checkpoints').select('projector').where('projector', '=', name).executeTakeFirst();
          checkKnown(ctx.subjects, name, Boolean(exists)); // unknown and never run: answers not_found with the known names
          const projection = { name };
          const before = await ctx.db.transaction().execute(async (trx) => {
            // The row lock makes a running projector's current batch finish first; its next one sees the new position and reopens there.
            const cp = await readCheckpoint(trx, projection.name, shard.shard, true);
            await trx
              .insertInto('projector_checkpoints')
              .values({ projector: projection.name, shard: shard.shard, epoch: shard.epoch, seq: to })
              .onConflict((oc) => oc.columns(['projector', 'shard']).doUpdateSet({ seq: to, epoch: shard.epoch, updated_at: sql`now()` }))
              .execute();
            return cp;
          });
          // The durable consumer is recreated at the new position by the projector (now, or when it next starts).
          const deleted = await deleteDurable(ctx.nats.jsm, shard.stream, projectorConsumerName(ctx.subjects.namespace, projection.name, shard.shard));
          printJson(io, { projector: projection.name, shard: shard.shard, from: before.seq, to, consumerDeleted: deleted });
        });
      },
    },
    cleanup: {
      usage: '[--yes]',
      summary: 'list (and with --yes drop) shadow_* and retired_* schemas left by interrupted or --keep-old rebuilds',
      run: async (args, io) => {
        const { values } = parse(args, { yes: { type: 'boolean' } }, 0);
        await withOps(io, async (ctx) => {
          const schemas = await leftoverSchemas(ctx.db);
          if (values.yes) for (const s of schemas) await dropSchema(ctx.db, s);
          printJson(io, { schemas, dropped: Boolean(values.yes) });
        });
      },
    },
  },
};
