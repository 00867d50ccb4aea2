import { discard, listParked, redrive, blockedEntities, RedriveFailed } from '../../services/projector/parked.js';
import { intOption, parse, printJson, UsageError, type CommandGroup } from './command.js';
import { withDatabase, withOps } from './context.js';
import { openProjection } from './projections.js';

/** `conv:g_1`, `user:alice`, or a bare conversation id. */
function entityArg(value: string): string {
  if (/^(conv|user):[A-Za-z0-9_-]+$/.test(value)) return value;
  if (/^[dgc]_[A-Za-z0-9_-]+$/.test(value)) return `conv:${value}`;
  throw new UsageError(`${value} is not an entity: use conv:<conversationId> or user:<userId>`);
}

const STATUSES = ['open', 'all', 'parked', 'held', 'redriven', 'discarded', 'tombstoned'] as const;

export const parked: CommandGroup = {
  summary: 'events a projector parked (dead-lettered): list, re-drive, discard',
  commands: {
    list: {
      usage: '[--projector P] [--status open|all|parked|held|redriven|discarded|tombstoned] [--entity E] [--limit N] [--payload]',
      summary: 'parked events (default: open ones, i.e. parked and held) with reason and attempts',
      run: async (args, io) => {
        const { values } = parse(
          args,
          { projector: { type: 'string' }, status: { type: 'string' }, entity: { type: 'string' }, limit: { type: 'string' }, payload: { type: 'boolean' } },
          0,
        );
        const status = (values.status ?? 'open') as (typeof STATUSES)[number];
        if (!STATUSES.includes(status)) throw new UsageError(`--status is one of ${STATUSES.join(', ')}`);
        await withDatabase(io, async (db) => {
          const rows = await listParked(db, {
            status,
            withPayload: Boolean(values.payload),
            ...(values.projector ? { projector: values.projector } : {}),
            ...(values.entity ? { entity: entityArg(values.entity) } : {}),
            ...(values.limit ? { limit: intOption(values.limit, 'limit')! } : {}),
          });
          for (const r of rows) io.out(JSON.stringify(r));
        });
      },
    },
    redrive: {
      usage: '<projector> <entity | --all>',
      summary: "apply an entity's parked and held events in order (after the fix is deployed), which unblocks it",
      run: async (args, io) => {
        const all = args.includes('--all');
        const { positionals } = parse(args, { all: { type: 'boolean' } }, all ? 1 : 2);
        await withOps(io, async (ctx) => {
          const projection = await openProjection(ctx, positionals[0]!);
          const entities = all ? await blockedEntities(ctx.db, projection.name) : [entityArg(positionals[1]!)];
          let failed = 0;
          for (const entity of entities) {
            try {
              io.out(JSON.stringify({ ok: true, ...(await redrive(ctx, projection, entity)) }));
            } catch (err) {
              if (!(err instanceof RedriveFailed)) throw err;
              failed++;
              io.out(JSON.stringify({ ok: false, entity, seq: err.seq, error: err.message }));
            }
          }
          if (failed > 0) throw new Error(`${failed} of ${entities.length} entities still fail; they stay blocked`);
        });
      },
    },
    discard: {
      usage: '<id>',
      summary: 'give up on one parked event (it is never applied); events held behind it wait for a redrive of the entity',
      run: async (args, io) => {
        const { positionals } = parse(args, {}, 1);
        const id = intOption(positionals[0], 'id')!;
        await withOps(io, async (ctx) => {
          if (!(await discard(ctx.db, id))) throw new Error(`no open parked event with id ${id}`);
          printJson(io, { discarded: id });
        });
      },
    },
  },
};
