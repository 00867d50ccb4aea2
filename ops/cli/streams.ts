import { DeliverPolicy, type JsMsg } from '@nats-io/jetstream';
import { ConversationId, parseEntitySubject } from '../../contracts/index.js';
import type { ShardInfo } from '../../services/event-log/streams.js';
import { intOption, parse, printJson, UsageError, type CliIO, type CommandGroup } from './command.js';
import { withOps, type OpsContext } from './context.js';
import { selectShard } from './log.js';

const decoder = new TextDecoder();
const nanosToDays = (n: number) => n / 86_400e9;

/** What to read: a filter on each of some shards' streams. */
type Reads = { shard: ShardInfo; filter: string }[];

/**
 * `conv.g_1`, `user.*`, `>`... are relative to the stored subjects (`<ns>.ev.`
 * on shard 0, `<ns>.ev.<k>.` on shard k); a subject already in the namespace
 * is taken as is. One entity's subject is read on its own shard, whatever
 * shard token was given; a wildcard on every shard (or only `only`'s).
 */
function eventReads(ctx: OpsContext, subject: string, only: ShardInfo | null): Reads {
  const inNamespace = subject.startsWith(`${ctx.subjects.namespace}.`);
  const entity = subject.includes('*') || subject.includes('>') ? null : parseEntitySubject(inNamespace ? subject : `${ctx.subjects.eventPrefix}${subject}`);
  if (entity) {
    const stored = entity.kind === 'conv' ? ctx.subjects.conv(entity.id) : ctx.subjects.user(entity.id);
    const shard = ctx.shards[ctx.subjects.shardOfSubject(stored)!]!;
    if (only && only.shard !== shard.shard) throw new UsageError(`${stored} is on shard ${shard.shard} (${shard.stream}), not ${only.stream}`);
    return [{ shard, filter: stored }];
  }
  if (inNamespace && !subject.startsWith(ctx.subjects.eventPrefix)) return (only ? [only] : ctx.shards).map((shard) => ({ shard, filter: subject }));
  let relative = inNamespace ? subject.slice(ctx.subjects.eventPrefix.length) : subject;
  // A shard token given by hand (`1.conv.*`) is the shard's prefix, supplied below.
  const token = /^([1-9][0-9]*)\.(.+)$/.exec(relative);
  let shards = only ? [only] : ctx.shards;
  if (token && ctx.shards[Number(token[1])]) {
    shards = shards.filter((s) => s.shard === Number(token[1]));
    relative = token[2]!;
  }
  return shards.map((shard) => ({ shard, filter: `${ctx.subjects.storedPrefix(shard.shard)}${relative}` }));
}

function line(m: JsMsg, shard: number | null): string {
  let event: unknown;
  try {
    event = JSON.parse(decoder.decode(m.data));
  } catch {
    event = { undecodable: decoder.decode(m.data) };
  }
  // With several shards a sequence names an event only with its shard; one shard prints what it always did.
  const at = shard === null ? { seq: m.seq } : { shard, seq: m.seq };
  return JSON.stringify({ ...at, time: new Date(Math.floor(m.info.timestampNanos / 1e6)).toISOString(), subject: m.subject, event });
}

type Start = { deliver_policy: DeliverPolicy; opt_start_seq?: number; opt_start_time?: string };

/**
 * Streams the stored events of each read (an ordered consumer per shard: reads only) until caught up, or
 * forever with `follow`. Shard after shard, each in its own order; following several, they interleave.
 */
async function readEvents(ctx: OpsContext, io: CliIO, reads: Reads, start: Start, follow: boolean, limit = Infinity): Promise<number> {
  if (!follow) {
    let n = 0;
    for (const r of reads) if (n < limit) n += await readShard(ctx, io, r, start, false, limit - n);
    return n;
  }
  const counts = await Promise.all(reads.map((r) => readShard(ctx, io, r, start, true, limit)));
  return counts.reduce((a, b) => a + b, 0);
}

async function readShard(ctx: OpsContext, io: CliIO, { shard, filter }: Reads[number], start: Start, follow: boolean, limit: number): Promise<number> {
  const stream = shard.stream;
  const label = ctx.shards.length > 1 ? shard.shard : null;
  const consumer = await ctx.nats.js.consumers.get(stream, { filter_subjects: [filter], ...start });
  if (!follow && (await consumer.info()).num_pending === 0) return 0;
  const messages = await consumer.consume({ max_messages: 512 });
  const stop = () => void messages.close().catch(() => undefined);
  io.signal.addEventListener('abort', stop, { once: true });
  let n = 0;
  try {
    for await (const m of messages) {
      io.out(line(m, label));
      if (++n >= limit || (!follow && m.info.pending === 0)) break;
    }
  } finally {
    io.signal.removeEventListener('abort', stop);
    await messages.close().catch(() => undefined);
  }
  return n;
}

function parseSince(value: string): string {
  const m = /^([0-9]+)(s|m|h|d)$/.exec(value);
  if (!m) throw new UsageError('--since takes a duration like 30s, 15m, 2h or 7d');
  const ms = Number(m[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[2] as 's' | 'm' | 'h' | 'd'];
  return new Date(Date.now() - ms).toISOString();
}

async function streamInfo(ctx: OpsContext, shard: ShardInfo) {
  const { config: c, state: s, created } = await ctx.nats.jsm.streams.info(shard.stream);
  return {
    stream: shard.stream,
    shard: shard.shard,
    epoch: shard.epoch,
    created,
    subjects: c.subjects,
    storage: c.storage,
    retention: { policy: c.retention, maxAgeDays: nanosToDays(c.max_age), maxBytes: c.max_bytes, maxMsgs: c.max_msgs, discard: c.discard },
    duplicateWindowSeconds: c.duplicate_window / 1e9,
    maxMsgBytes: c.max_msg_size,
    replicas: c.num_replicas,
    republish: c.republish ?? null,
    state: {
      messages: s.messages,
      bytes: s.bytes,
      firstSeq: s.first_seq,
      firstTime: s.first_ts,
      lastSeq: s.last_seq,
      lastTime: s.last_ts,
      subjects: s.num_subjects,
      deleted: s.num_deleted ?? 0,
      consumers: s.consumer_count,
    },
  };
}

export const streams: CommandGroup = {
  summary: 'the event log: stream and consumer state, tail, export',
  commands: {
    info: {
      usage: '[--stream NAME | --shard K]',
      summary: 'the event stream: retention, limits, size, first and last sequence, epoch (with several shards, a list of every shard stream)',
      run: async (args, io) => {
        const { values } = parse(args, { stream: { type: 'string' }, shard: { type: 'string' } }, 0);
        await withOps(io, async (ctx) => {
          const one = values.stream !== undefined || values.shard !== undefined || ctx.shards.length === 1;
          const out = [];
          for (const shard of one ? [selectShard(ctx, values.stream, values.shard)] : ctx.shards) out.push(await streamInfo(ctx, shard));
          printJson(io, one ? out[0] : out);
        });
      },
    },
    consumers: {
      usage: '[--stream NAME | --shard K]',
      summary: 'every consumer of the event stream (of every shard stream) with its pending, unacknowledged and redelivered counts',
      run: async (args, io) => {
        const { values } = parse(args, { stream: { type: 'string' }, shard: { type: 'string' } }, 0);
        await withOps(io, async (ctx) => {
          const out = [];
          const only = values.stream !== undefined || values.shard !== undefined ? selectShard(ctx, values.stream, values.shard) : null;
          for (const shard of only ? [only] : ctx.shards) {
            for await (const ci of ctx.nats.jsm.consumers.list(shard.stream)) {
              out.push({
                // Which stream, once there are several (a consumer's sequences are its stream's).
                ...(ctx.shards.length > 1 ? { stream: shard.stream, shard: shard.shard } : {}),
                name: ci.name,
                durable: Boolean(ci.config.durable_name),
                filterSubjects: ci.config.filter_subjects ?? (ci.config.filter_subject ? [ci.config.filter_subject] : []),
                pending: ci.num_pending,
                unacknowledged: ci.num_ack_pending,
                redelivered: ci.num_redelivered,
                deliveredSeq: ci.delivered.stream_seq,
                ackFloorSeq: ci.ack_floor.stream_seq,
                lastActive: ci.delivered.last_active ?? null,
              });
            }
          }
          printJson(io, out);
        });
      },
    },
    tail: {
      usage: '<subject> [--since 15m | --from-seq N | --all] [--stream NAME | --shard K] [--follow] [--limit N]',
      summary: 'stored events on a subject (conv.<id>, user.<id>, conv.*, >) as NDJSON, on every shard (or one); --follow keeps waiting for new ones',
      run: async (args, io) => {
        const { values, positionals } = parse(
          args,
          {
            since: { type: 'string' },
            'from-seq': { type: 'string' },
            all: { type: 'boolean' },
            follow: { type: 'boolean' },
            limit: { type: 'string' },
            stream: { type: 'string' },
            shard: { type: 'string' },
          },
          1,
        );
        const fromSeq = intOption(values['from-seq'], 'from-seq');
        await withOps(io, async (ctx) => {
          const only = values.stream !== undefined || values.shard !== undefined ? selectShard(ctx, values.stream, values.shard) : null;
          const reads = eventReads(ctx, positionals[0]!, only);
          // A sequence is one stream's: it cannot start reads on several.
          if (fromSeq !== undefined && reads.length > 1) throw new UsageError('--from-seq is a sequence of one shard stream: name it with --stream or --shard');
          const start: Start = values.all
            ? { deliver_policy: DeliverPolicy.All }
            : fromSeq !== undefined
              ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Math.max(1, fromSeq) }
              : { deliver_policy: DeliverPolicy.StartTime, opt_start_time: parseSince(values.since ?? '15m') };
          await readEvents(ctx, io, reads, start, Boolean(values.follow), intOption(values.limit, 'limit'));
        });
      },
    },
    export: {
      usage: '<conversationId> [--from-seq N]',
      summary: "one conversation's whole log as NDJSON, exactly as stored (old versions are not upcast); --from-seq is of its shard's stream",
      run: async (args, io) => {
        const { values, positionals } = parse(args, { 'from-seq': { type: 'string' } }, 1);
        const id = ConversationId.safeParse(positionals[0]);
        if (!id.success) throw new UsageError(`${positionals[0]} is not a conversation id`);
        const fromSeq = intOption(values['from-seq'], 'from-seq', 1)!;
        await withOps(io, async (ctx) => {
          const n = await readEvents(
            ctx,
            io,
            eventReads(ctx, ctx.subjects.conv(id.data), null),
            { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Math.max(1, fromSeq) },
            false,
          );
          io.err(`exported ${n} events of ${id.data}`);
        });
      },
    },
  },
};
