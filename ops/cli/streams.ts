import { DeliverPolicy, type JsMsg } from '@nats-io/jetstream';
import { ConversationId } from '../../contracts/index.js';
import { intOption, parse, printJson, UsageError, type CliIO, type CommandGroup } from './command.js';
import { withOps, type OpsContext } from './context.js';

const decoder = new TextDecoder();
const nanosToDays = (n: number) => n / 86_400e9;

/** `conv.g_1`, `user.*`, `>`... are relative to `<ns>.ev.`; a subject already in the namespace is taken as is. */
function eventFilter(ctx: OpsContext, subject: string): string {
  return subject.startsWith(`${ctx.subjects.namespace}.`) ? subject : `${ctx.subjects.eventPrefix}${subject}`;
}

function line(m: JsMsg): string {
  let event: unknown;
  try {
    event = JSON.parse(decoder.decode(m.data));
  } catch {
    event = { undecodable: decoder.decode(m.data) };
  }
  return JSON.stringify({ seq: m.seq, time: new Date(Math.floor(m.info.timestampNanos / 1e6)).toISOString(), subject: m.subject, event });
}

type Start = { deliver_policy: DeliverPolicy; opt_start_seq?: number; opt_start_time?: string };

/** Streams the stored events matching `filter` (an ordered consumer: reads only) until caught up, or forever with `follow`. */
async function readEvents(ctx: OpsContext, io: CliIO, filter: string, start: Start, follow: boolean, limit = Infinity): Promise<number> {
  const stream = ctx.shards[0]!.stream;
  const consumer = await ctx.nats.js.consumers.get(stream, { filter_subjects: [filter], ...start });
  if (!follow && (await consumer.info()).num_pending === 0) return 0;
  const messages = await consumer.consume({ max_messages: 512 });
  const stop = () => void messages.close().catch(() => undefined);
  io.signal.addEventListener('abort', stop, { once: true });
  let n = 0;
  try {
    for await (const m of messages) {
      io.out(line(m));
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

export const streams: CommandGroup = {
  summary: 'the event log: stream and consumer state, tail, export',
  commands: {
    info: {
      usage: '',
      summary: 'the event stream: retention, limits, size, first and last sequence, epoch',
      run: async (args, io) => {
        parse(args, {}, 0);
        await withOps(io, async (ctx) => {
          const shard = ctx.shards[0]!;
          const { config: c, state: s, created } = await ctx.nats.jsm.streams.info(shard.stream);
          printJson(io, {
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
          });
        });
      },
    },
    consumers: {
      usage: '',
      summary: 'every consumer of the event stream with its pending, unacknowledged and redelivered counts',
      run: async (args, io) => {
        parse(args, {}, 0);
        await withOps(io, async (ctx) => {
          const out = [];
          for await (const ci of ctx.nats.jsm.consumers.list(ctx.shards[0]!.stream)) {
            out.push({
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
          printJson(io, out);
        });
      },
    },
    tail: {
      usage: '<subject> [--since 15m | --from-seq N | --all] [--follow] [--limit N]',
      summary: 'stored events on a subject (conv.<id>, user.<id>, conv.*, >) as NDJSON; --follow keeps waiting for new ones',
      run: async (args, io) => {
        const { values, positionals } = parse(
          args,
          { since: { type: 'string' }, 'from-seq': { type: 'string' }, all: { type: 'boolean' }, follow: { type: 'boolean' }, limit: { type: 'string' } },
          1,
        );
        const fromSeq = intOption(values['from-seq'], 'from-seq');
        await withOps(io, async (ctx) => {
          const start: Start = values.all
            ? { deliver_policy: DeliverPolicy.All }
            : fromSeq !== undefined
              ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Math.max(1, fromSeq) }
              : { deliver_policy: DeliverPolicy.StartTime, opt_start_time: parseSince(values.since ?? '15m') };
          await readEvents(ctx, io, eventFilter(ctx, positionals[0]!), start, Boolean(values.follow), intOption(values.limit, 'limit'));
        });
      },
    },
    export: {
      usage: '<conversationId> [--from-seq N]',
      summary: "one conversation's whole log as NDJSON, exactly as stored (old versions are not upcast)",
      run: async (args, io) => {
        const { values, positionals } = parse(args, { 'from-seq': { type: 'string' } }, 1);
        const id = ConversationId.safeParse(positionals[0]);
        if (!id.success) throw new UsageError(`${positionals[0]} is not a conversation id`);
        const fromSeq = intOption(values['from-seq'], 'from-seq', 1)!;
        await withOps(io, async (ctx) => {
          const n = await readEvents(
            ctx,
            io,
            ctx.subjects.conv(id.data),
            { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Math.max(1, fromSeq) },
            false,
          );
          io.err(`exported ${n} events of ${id.data}`);
        });
      },
    },
  },
};
