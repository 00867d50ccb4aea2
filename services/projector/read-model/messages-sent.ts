import { sql, type Transaction } from 'kysely';
import type { ConversationEventOf } from '../../../contracts/index.js';
import type { Database } from '../../read-store/schema.js';
import { indexTokens } from '../../domain/search-tokens.js';
import { PREPARED } from '../../read-store/prepared.js';

type Trx = Transaction<Database>;
export type PendingMessage = { seq: number; event: ConversationEventOf<'message.sent'> };

const PREVIEW_CHARS = 120;

const tokenCache = new WeakMap<object, string>();

/** A message's search tokens, space-joined; computed once per event object (a replay computes them ahead, in prepare()). */
export function searchTokens(event: ConversationEventOf<'message.sent'>): string {
  let tokens = tokenCache.get(event.data);
  if (tokens === undefined) tokenCache.set(event.data, (tokens = indexTokens(event.data.text).join(' ')));
  return tokens;
}

/**
 * What the batch's lookup (read-model/applied.ts) learnt about the messages
 * before any was inserted, kept up to date through the transaction: the
 * message count of every conversation row (`counts`; a conversation looked
 * up and absent has no row, and its messages count nowhere, as the UPDATE
 * of its row changes nothing), and which client message ids are stored.
 * Only insertMessages changes either (messages are never deleted, only
 * marked) and insertConversations adds rows (noteCreated), so a run needs no
 * query of its own for them.
 */
export interface SentState {
  counts: Map<string, number>;
  /** Conversations whose row was looked up (or created since): absent from `counts` means no row. */
  looked: Set<string>;
  stored: Set<string>;
}

/** A run of creations was inserted: conversations without a row have one now, with no message yet. */
export function noteCreated(state: SentState, conversationIds: string[]): void {
  for (const id of conversationIds) {
    if (state.looked.has(id) && !state.counts.has(id)) state.counts.set(id, 0);
  }
}

/** A message's idempotency key: one message per sender and client id in a conversation (messages_client_msg_idx). */
export function clientKey(conversationId: string, sender: string, clientMsgId: string): string {
  return `${conversationId}\u0000${sender}\u0000${clientMsgId}`;
}

/**
 * Inserts a run of consecutive message.sent events with one statement,
 * whatever the run's length: duplicates (a client message id retried past
 * the log's dedup window, or a message applied before) are dropped first,
 * so ordinals and counters count each message once.
 */
export async function insertMessages(trx: Trx, pending: PendingMessage[], state: SentState): Promise<void> {
  const fresh = dropDuplicates(pending, state.stored);
  if (fresh.length === 0) return;
  await lookUpCounts(trx, fresh, state);
  // Counted from the row's count; a conversation without a row starts from 0 at every run, as it did per statement.
  const counts = new Map(state.counts);
  const previews = await replyPreviews(trx, fresh);

  const rows = fresh.map(({ seq, event }) => {
    const d = event.data;
    const ordinal = (counts.get(d.conversationId) ?? 0) + 1;
    counts.set(d.conversationId, ordinal);
    const reply = d.replyTo ? previews.get(`${d.conversationId}:${d.replyTo.seq}`) : undefined;
    return { seq, event, d, ordinal, reply };
  });

  const parts = [insertRows(rows)];
  const mentions = fresh.flatMap(({ seq, event }) => (event.data.mentions ?? []).map((user_id) => ({ c: event.data.conversationId, seq, user_id })));
  if (mentions.length)
    parts.push(sql`insert into message_mentions (conversation_id, seq, user_id)
      select * from unnest(${mentions.map((m) => m.c)}::text[], ${mentions.map((m) => m.seq)}::bigint[], ${mentions.map((m) => m.user_id)}::text[])
      on conflict do nothing`);
  const attachments = fresh.flatMap(({ seq, event }) => (event.data.attachments ?? []).map((a) => ({ id: a.id, c: event.data.conversationId, seq })));
  if (attachments.length)
    parts.push(sql`insert into message_attachments (attachment_id, conversation_id, seq)
      select * from unnest(${attachments.map((a) => a.id)}::text[], ${attachments.map((a) => a.c)}::text[], ${attachments.map((a) => a.seq)}::bigint[])
      on conflict do nothing`);

  // Counters and latest message of every touched conversation.
  const latest = new Map<string, PendingMessage>();
  for (const m of fresh) latest.set(m.event.data.conversationId, m);
  const ids = [...latest.keys()];
  parts.push(sql`
    update conversations c set
      message_count = v.cnt, last_seq = greatest(c.last_seq, v.seq), last_message_seq = v.seq,
      last_activity_at = greatest(c.last_activity_at, v.at)
    from unnest(${ids}::text[], ${ids.map((id) => counts.get(id))}::bigint[], ${ids.map((id) => latest.get(id)!.seq)}::bigint[],
                ${ids.map((id) => new Date(latest.get(id)!.event.at).toISOString())}::timestamptz[]) as v(id, cnt, seq, at)
    where c.id = v.id`);

  for (const id of ids) if (state.counts.has(id)) state.counts.set(id, counts.get(id)!);

  // Sending implies having read everything before: advance each sender's own marker (one row per sender, not per member).
  const senders = new Map<string, number>();
  for (const { seq, event } of fresh) senders.set(`${event.data.conversationId}\u0000${event.actor}`, seq);
  const keys = [...senders.keys()].map((k) => k.split('\u0000') as [string, string]);
  const members = sql`
    update conversation_members m set read_seq = greatest(m.read_seq, v.seq), delivered_seq = greatest(m.delivered_seq, v.seq)
    from unnest(${keys.map((k) => k[0])}::text[], ${keys.map((k) => k[1])}::text[], ${[...senders.values()]}::bigint[]) as v(cid, uid, seq)
    where m.conversation_id = v.cid and m.user_id = v.uid`;

  // One round trip for all of it: each part writes a different table (no two touch one row, so none needs to see
  // another's effect), and data-modifying WITH parts always run to completion (Postgres docs, "WITH Queries").
  await sql`${PREPARED}with ${sql.join(
    parts.map((p, i) => sql`${sql.raw(`w${i}`)} as (${p})`),
    sql`, `,
  )} ${members}`.execute(trx);
}

type Row = {
  seq: number;
  event: PendingMessage['event'];
  d: PendingMessage['event']['data'];
  ordinal: number;
  reply: { preview: string; sender: string } | undefined;
};
type Column = { name: string; type: string; values: (r: Row) => unknown; expr?: string };

const ALWAYS: Column[] = [
  { name: 'conversation_id', type: 'text', values: (r) => r.d.conversationId },
  { name: 'seq', type: 'bigint', values: (r) => r.seq },
  { name: 'message_id', type: 'bigint', values: (r) => r.d.messageId },
  { name: 'sender_id', type: 'text', values: (r) => r.event.actor },
  { name: 'client_msg_id', type: 'text', values: (r) => r.d.clientMsgId },
  { name: 'text', type: 'text', values: (r) => r.d.text },
  { name: 'created_at', type: 'timestamptz', values: (r) => new Date(r.event.at).toISOString() },
  { name: 'ordinal', type: 'bigint', values: (r) => r.ordinal },
  // Tokens travel space-joined: they cannot contain a space.
  { name: 'search', type: 'text', values: (r) => searchTokens(r.event), expr: `array_to_tsvector(string_to_array(v.search, ' '))` },
];
const REPLY: Column[] = [
  { name: 'reply_to_seq', type: 'bigint', values: (r) => r.d.replyTo?.seq ?? null },
  { name: 'reply_to_message_id', type: 'bigint', values: (r) => r.d.replyTo?.messageId ?? null },
  { name: 'reply_preview', type: 'text', values: (r) => r.reply?.preview ?? null },
  { name: 'reply_sender_id', type: 'text', values: (r) => r.reply?.sender ?? null },
];
// User ids cannot contain a space either.
const MENTIONS: Column = { name: 'mentions', type: 'text', values: (r) => (r.d.mentions ?? []).join(' '), expr: `string_to_array(v.mentions, ' ')` };
const ATTACHMENTS: Column = { name: 'attachments', type: 'text', values: (r) => JSON.stringify(r.d.attachments ?? []), expr: 'v.attachments::jsonb' };

/**
 * The columns a run needs: replies, mentions and attachments only when some
 * message of the run has them (the others get the column defaults, which
 * are what an empty value would store), because every column costs a
 * parsed array and per-row work in Postgres.
 */
function columns(rows: Row[]): Column[] {
  const out = [...ALWAYS];
  if (rows.some((r) => r.d.replyTo)) out.push(...REPLY);
  if (rows.some((r) => r.d.mentions?.length)) out.push(MENTIONS);
  if (rows.some((r) => r.d.attachments?.length)) out.push(ATTACHMENTS);
  return out;
}

/**
 * One INSERT ... SELECT over one array per column (unnest), whatever the
 * run's length: a multi-row VALUES list would cost Postgres a parse and plan
 * of thousands of parameters per batch, and the client a build of them (the
 * rebuild benchmark, ops/bench/projector-rebuild.ts, measured it as the
 * largest cost of a replay).
 *
 * No ON CONFLICT: dropDuplicates has removed every message already stored
 * under its client id, which covers its sequence too (one log holds one
 * event per sequence; a checkpoint from another log is refused), and
 * nothing else writes the table meanwhile, since every writer of a
 * projection holds its checkpoint row. Checking both unique indexes again
 * per row cost Postgres about a third of the insert (measured).
 */
function insertRows(rows: Row[]) {
  const cols = columns(rows);
  const names = sql.raw(cols.map((c) => c.name).join(', '));
  const arrays = sql.join(cols.map((c) => sql`${rows.map(c.values)}::${sql.raw(c.type)}[]`));
  return sql`insert into messages (${names}) select ${sql.raw(cols.map((c) => c.expr ?? `v.${c.name}`).join(', '))} from unnest(${arrays}) as v(${names})`;
}

/** Counts of conversations the batch's lookup did not cover (a send on a subject that names no conversation). */
async function lookUpCounts(trx: Trx, fresh: PendingMessage[], state: SentState): Promise<void> {
  const ids = [...new Set(fresh.map((m) => m.event.data.conversationId))].filter((id) => !state.looked.has(id));
  if (ids.length === 0) return;
  for (const r of await trx.selectFrom('conversations').select(['id', 'message_count']).where('id', 'in', ids).execute())
    state.counts.set(r.id, Number(r.message_count));
  for (const id of ids) state.looked.add(id);
}

/** The run's messages not stored yet, each once (`stored` then holds them too: they are about to be). */
function dropDuplicates(pending: PendingMessage[], stored: Set<string>): PendingMessage[] {
  const seqs = new Set<number>();
  return pending.filter(({ seq, event }) => {
    const k = clientKey(event.data.conversationId, event.actor, event.data.clientMsgId);
    if (stored.has(k) || seqs.has(seq)) return false;
    stored.add(k);
    seqs.add(seq);
    return true;
  });
}

/** Quoted previews for replies: from the same run when the target is in it, else from the table. */
async function replyPreviews(trx: Trx, fresh: PendingMessage[]): Promise<Map<string, { preview: string; sender: string }>> {
  const out = new Map<string, { preview: string; sender: string }>();
  const inRun = new Map(fresh.map((m) => [`${m.event.data.conversationId}:${m.seq}`, m]));
  const lookups: { c: string; s: number }[] = [];
  for (const m of fresh) {
    const r = m.event.data.replyTo;
    if (!r) continue;
    const k = `${m.event.data.conversationId}:${r.seq}`;
    const local = inRun.get(k);
    if (local) out.set(k, { preview: [...local.event.data.text].slice(0, PREVIEW_CHARS).join(''), sender: local.event.actor });
    else lookups.push({ c: m.event.data.conversationId, s: r.seq });
  }
  if (lookups.length) {
    const rows = await trx
      .selectFrom('messages')
      .select(['conversation_id', 'seq', 'text', 'sender_id', 'status'])
      .where((eb) => eb.or(lookups.map((l) => eb.and([eb('conversation_id', '=', l.c), eb('seq', '=', String(l.s))]))))
      .execute();
    for (const r of rows) {
      if (r.status === 'active') out.set(`${r.conversation_id}:${r.seq}`, { preview: [...r.text].slice(0, PREVIEW_CHARS).join(''), sender: r.sender_id });
    }
  }
  return out;
}
