import { setTimeout as sleep } from 'node:timers/promises';
import { LogTombstoned, parseEntitySubject, UserId } from '../../contracts/index.js';
import { AppError } from '../../services/runtime/errors.js';
import { decodeEntry, EventStore, WrongLastSequence } from '../../services/event-log/event-store.js';
import { recordTombstone } from '../../services/projection/tombstones.js';
import type { ShardInfo } from '../../services/event-log/streams.js';
import { intOption, parse, printJson, UsageError, type CliIO, type CommandGroup } from './command.js';
import { withOps, type OpsContext } from './context.js';

/**
 * The shard a command works on: `--stream NAME` (a stream of this
 * deployment) or `--shard K`; shard 0 when neither is given (the only one with
 * one shard). Sequences are per shard stream, so a sequence alone is not enough.
 */
export function selectShard(ctx: OpsContext, stream: string | undefined, shard: string | undefined): ShardInfo {
  const streams = ctx.shards.map((s) => s.stream).join(', ');
  if (stream !== undefined && shard !== undefined) throw new UsageError('give --stream or --shard, not both');
  if (shard !== undefined) {
    const k = intOption(shard, 'shard')!;
    const info = ctx.shards[k];
    if (!info) throw new UsageError(`--shard must be 0..${ctx.shards.length - 1} (STREAM_SHARDS=${ctx.shards.length})`);
    return info;
  }
  if (stream === undefined) return ctx.shards[0]!;
  const info = ctx.shards.find((s) => s.stream === stream);
  if (!info) throw new UsageError(`--stream must name one of this deployment's event streams (${streams})`);
  return info;
}

/** What one Postgres projector did with the tombstoned event, as far as the command can tell. */
type ProjectorOutcome =
  /** It had parked (or held) the event: the row is now `tombstoned` and the entity's held events were applied. */
  | 'resolved'
  /** It applied the event before the tombstone existed: its effect stays until `parley projectors rebuild <name>`. */
  | 'applied_before_tombstone'
  /** It never applied the event (unreadable, or a parked entry an operator discarded): nothing to undo. */
  | 'never_applied'
  /** It had not reached the event yet: it will skip it. */
  | 'will_skip'
  /** It has not reached the tombstone within --wait-ms (not running?): it resolves it when it does. */
  | 'pending';

interface Before {
  projector: string;
  checkpoint: number;
  parked: boolean;
  discarded: boolean;
}

async function projectorsBefore(ctx: OpsContext, shard: ShardInfo, seq: number): Promise<Before[]> {
  const rows = await ctx.db.selectFrom('projector_checkpoints').select(['projector', 'seq']).where('shard', '=', shard.shard).execute();
  const out: Before[] = [];
  for (const r of rows) {
    const row = await ctx.db
      .selectFrom('parked_events')
      .select('status')
      .where('projector', '=', r.projector)
      .where('shard', '=', shard.shard)
      .where('seq', '=', String(seq))
      .executeTakeFirst();
    out.push({
      projector: r.projector,
      checkpoint: Number(r.seq),
      parked: row?.status === 'parked' || row?.status === 'held',
      discarded: row?.status === 'discarded',
    });
  }
  return out;
}

/** Waits (bounded) for each projector to pass the tombstone, then says what each did with the event. */
async function outcomes(
  ctx: OpsContext,
  shard: ShardInfo,
  signal: AbortSignal,
  before: Before[],
  seq: number,
  readable: boolean,
  tombstoneSeq: number,
  waitMs: number,
): Promise<Record<string, ProjectorOutcome>> {
  const deadline = Date.now() + waitMs;
  const out: Record<string, ProjectorOutcome> = {};
  for (const b of before) {
    if (!b.parked) {
      out[b.projector] = b.checkpoint < seq ? 'will_skip' : !readable || b.discarded ? 'never_applied' : 'applied_before_tombstone';
      continue;
    }
    out[b.projector] = 'pending';
    for (;;) {
      const row = await ctx.db
        .selectFrom('projector_checkpoints')
        .select('seq')
        .where('projector', '=', b.projector)
        .where('shard', '=', shard.shard)
        .executeTakeFirst();
      if (row && Number(row.seq) >= tombstoneSeq) {
        const parked = await ctx.db
          .selectFrom('parked_events')
          .select('status')
          .where('projector', '=', b.projector)
          .where('shard', '=', shard.shard)
          .where('seq', '=', String(seq))
          .executeTakeFirst();
        out[b.projector] = parked?.status === 'tombstoned' ? 'resolved' : 'pending';
        break;
      }
      if (Date.now() >= deadline || signal.aborted) break;
      await sleep(100);
    }
  }
  return out;
}

/**
 * Per projector, the events of the same subject still parked after the
 * tombstone was applied: a `resolved` event can leave its entity blocked
 * behind the next unreadable one (a release stops at the first event that
 * fails), and the operator must see that rather than a bare "resolved".
 */
async function stillParked(ctx: OpsContext, shard: ShardInfo, subject: string): Promise<Record<string, number[]>> {
  const rows = await ctx.db
    .selectFrom('parked_events')
    .select(['projector', 'seq'])
    .where('shard', '=', shard.shard)
    .where('subject', '=', subject)
    .where('status', '=', 'parked')
    .orderBy('projector')
    .orderBy('seq')
    .execute();
  const out: Record<string, number[]> = {};
  for (const r of rows) (out[r.projector] ??= []).push(Number(r.seq));
  return out;
}

async function tombstone(ctx: OpsContext, io: CliIO, args: { shard: ShardInfo; seq: number; reason: string; by: string; waitMs: number }): Promise<void> {
  const { shard } = args;
  const msg = await ctx.nats.jsm.direct.getMessage(shard.stream, { seq: args.seq });
  if (!msg) throw new AppError('not_found', `there is no event at ${shard.stream} sequence ${args.seq} (never stored, or aged out)`);
  const entity = parseEntitySubject(msg.subject);
  // The stream holds only its own shard's subjects; checked all the same, as anything else is no entity's event here.
  if (!entity || ctx.subjects.shardOfSubject(msg.subject) !== shard.shard)
    throw new AppError('invalid_request', `sequence ${args.seq} is on ${msg.subject}, not an entity's event subject`);
  const target = decodeEntry(msg.seq, msg.subject, msg.data);
  if (target.event?.type === 'log.tombstoned') throw new AppError('invalid_request', `sequence ${args.seq} is itself a tombstone; tombstones are final`);
  const existing = await ctx.db
    .selectFrom('log_tombstones')
    .selectAll()
    .where('stream', '=', shard.stream)
    .where('epoch', '=', shard.epoch)
    .where('seq', '=', String(args.seq))
    .executeTakeFirst();
  if (existing) {
    printJson(io, {
      stream: shard.stream,
      seq: args.seq,
      subject: msg.subject,
      tombstoneSeq: Number(existing.tombstone_seq),
      alreadyTombstoned: true,
      reason: existing.reason,
      by: existing.by,
    });
    return;
  }
  const parsed = LogTombstoned.safeParse({
    type: 'log.tombstoned',
    v: 1,
    at: Date.now(),
    actor: args.by,
    data: { stream: shard.stream, seq: args.seq, reason: args.reason, by: args.by, ...(entity.kind === 'conv' ? { conversationId: entity.id } : {}) },
  });
  if (!parsed.success) throw new UsageError(`invalid tombstone: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const before = await projectorsBefore(ctx, shard, args.seq);
  const store = new EventStore(ctx.nats.nc, ctx.nats.js, ctx.nats.jsm, shard.stream);
  let tombstoneSeq = 0;
  try {
    // Conditional like every write-side append: a writer deciding on this subject meanwhile sees the tombstone and decides again.
    for (let attempt = 1; ; attempt++) {
      const last = await store.lastSubjectSeq(msg.subject);
      try {
        tombstoneSeq = (
          await store.append(msg.subject, parsed.data, { expectedLastSubjectSeq: last, msgId: `tombstone:${shard.stream}:${shard.epoch}:${args.seq}` })
        ).seq;
        break;
      } catch (err) {
        if (!(err instanceof WrongLastSequence) || attempt >= 10) throw err;
      }
    }
  } finally {
    store.close();
  }
  await recordTombstone(ctx.db, { stream: shard.stream, epoch: shard.epoch }, msg.subject, tombstoneSeq, parsed.data);
  io.err(`appended log.tombstoned at ${tombstoneSeq}; waiting up to ${args.waitMs} ms for the projectors`);
  const projectors = await outcomes(ctx, shard, io.signal, before, args.seq, target.event !== null, tombstoneSeq, args.waitMs);
  const rebuild = Object.entries(projectors)
    .filter(([, o]) => o === 'applied_before_tombstone')
    .map(([p]) => p);
  const blocked = await stillParked(ctx, shard, msg.subject);
  const blockedSeqs = [...new Set(Object.values(blocked).flat())].sort((a, b) => a - b);
  printJson(io, {
    stream: shard.stream,
    seq: args.seq,
    subject: msg.subject,
    eventType: target.event?.type ?? null,
    readable: target.event !== null,
    tombstoneSeq,
    projectors,
    ...(rebuild.length > 0
      ? {
          note: `applied before it was tombstoned by ${rebuild.join(', ')}: its effect (if any) stays there until \`parley projectors rebuild <name> --no-verify\``,
        }
      : {}),
    ...(blockedSeqs.length > 0
      ? {
          stillBlockedBy: blocked,
          blockedNote: `${msg.subject} is still blocked by the parked event${blockedSeqs.length > 1 ? 's' : ''} at ${blockedSeqs.join(', ')} (\`parley parked list\`): tombstone ${blockedSeqs.length > 1 ? 'them' : 'it'} too, or re-drive after a fix`,
        }
      : {}),
  });
}

export const log: CommandGroup = {
  summary: 'the event log as operators correct it: tombstone one event that every reader then ignores',
  commands: {
    tombstone: {
      usage: '--seq N --reason TEXT [--stream NAME | --shard K] [--by OPERATOR] [--wait-ms N]',
      summary:
        'record (as a log.tombstoned event on the same subject) that the event at sequence N (of shard 0, or of the named stream or shard) is ignored by the write side, every projection (replays too) and resumes; resolves its parked entries',
      run: async (args, io) => {
        const { values } = parse(
          args,
          {
            stream: { type: 'string' },
            shard: { type: 'string' },
            seq: { type: 'string' },
            reason: { type: 'string' },
            by: { type: 'string' },
            'wait-ms': { type: 'string' },
          },
          0,
        );
        if (values.seq === undefined) throw new UsageError('--seq is required');
        const seq = intOption(values.seq, 'seq')!;
        if (seq < 1) throw new UsageError('--seq must be a stream sequence (1 or more)');
        if (!values.reason?.trim()) throw new UsageError('--reason is required: say why, it is recorded in the log');
        const by = values.by ?? 'operator';
        if (!UserId.safeParse(by).success) throw new UsageError('--by is a name of A-Z a-z 0-9 _ - (up to 64)');
        const waitMs = intOption(values['wait-ms'], 'wait-ms', 10_000)!;
        await withOps(io, (ctx) =>
          tombstone(ctx, io, { shard: selectShard(ctx, values.stream, values.shard), seq, reason: values.reason!.trim(), by, waitMs }),
        );
      },
    },
    tombstones: {
      usage: '[--stream NAME | --shard K] [--limit N]',
      summary: 'every tombstoned event of the log (or of one shard): stream, sequence, subject, reason, by whom, the tombstone event',
      run: async (args, io) => {
        const { values } = parse(args, { stream: { type: 'string' }, shard: { type: 'string' }, limit: { type: 'string' } }, 0);
        const limit = intOption(values.limit, 'limit', 1000)!;
        await withOps(io, async (ctx) => {
          const only = values.stream !== undefined || values.shard !== undefined ? selectShard(ctx, values.stream, values.shard) : null;
          // Shard by shard (each in its current epoch), in sequence order within one.
          const rows = [];
          for (const shard of only ? [only] : ctx.shards) {
            if (rows.length >= limit) break;
            rows.push(
              ...(await ctx.db
                .selectFrom('log_tombstones')
                .selectAll()
                .where('stream', '=', shard.stream)
                .where('epoch', '=', shard.epoch)
                .orderBy('seq')
                .limit(limit - rows.length)
                .execute()),
            );
          }
          for (const r of rows)
            io.out(
              JSON.stringify({
                stream: r.stream,
                seq: Number(r.seq),
                subject: r.subject,
                reason: r.reason,
                by: r.by,
                tombstoneSeq: Number(r.tombstone_seq),
                createdAt: r.created_at,
              }),
            );
        });
      },
    },
  },
};
