import { sql, type Transaction } from 'kysely';
import type { ConversationEventOf } from '../../../contracts/index.js';
import type { Database } from '../../shared/db/schema.js';
import { indexTokens } from '../../shared/search-tokens.js';

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
 * Inserts a run of consecutive message.sent events with a fixed number of
 * statements, whatever the run's length: duplicates (a client message id
 * retried past the log's dedup window) are dropped first, so ordinals and
 * counters count each message once.
 */
export async function insertMessages(trx: Trx, pending: PendingMessage[]): Promise<void> {
  const fresh = await dropDuplicates(trx, pending);
  if (fresh.length === 0) return;
  const convIds = [...new Set(fresh.map((m) => m.event.data.conversationId))];
  const counts = new Map<string, number>();
  for (const r of await trx.selectFrom('conversations').select(['id', 'message_count']).where('id', 'in', convIds).execute()) counts.set(r.id, Number(r.message_count));
  const previews = await replyPreviews(trx, fresh);

  const rows = fresh.map(({ seq, event }) => {
    const d = event.data;
    const ordinal = (counts.get(d.conversationId) ?? 0) + 1;
    counts.set(d.conversationId, ordinal);
    const reply = d.replyTo ? previews.get(`${d.conversationId}:${d.replyTo.seq}`) : undefined;
    return { seq, event, d, ordinal, reply };
  });
  // One statement with one array per column (unnest), whatever the run's length: a multi-row VALUES list
  // would cost Postgres a parse and plan of thousands of parameters per batch, and the client a build of them
  // (the rebuild benchmark, ops/bench/projector-rebuild.ts, measured it as the largest cost of a replay).
  // Mentions and search tokens travel space-joined: neither user ids nor tokens can contain a space.
  await sql`
    insert into messages (conversation_id, seq, message_id, sender_id, client_msg_id, text, created_at, ordinal,
      reply_to_seq, reply_to_message_id, reply_preview, reply_sender_id, mentions, attachments, search)
    select v.cid, v.seq, v.mid, v.sender, v.cmid, v.text, v.at, v.ordinal, v.rseq, v.rmid, v.rpreview, v.rsender,
      string_to_array(v.mentions, ' '), v.attachments::jsonb, array_to_tsvector(string_to_array(v.tokens, ' '))
    from unnest(${rows.map((r) => r.d.conversationId)}::text[], ${rows.map((r) => r.seq)}::bigint[], ${rows.map((r) => r.d.messageId)}::bigint[],
                ${rows.map((r) => r.event.actor)}::text[], ${rows.map((r) => r.d.clientMsgId)}::text[], ${rows.map((r) => r.d.text)}::text[],
                ${rows.map((r) => new Date(r.event.at).toISOString())}::timestamptz[], ${rows.map((r) => r.ordinal)}::bigint[],
                ${rows.map((r) => r.d.replyTo?.seq ?? null)}::bigint[], ${rows.map((r) => r.d.replyTo?.messageId ?? null)}::bigint[],
                ${rows.map((r) => r.reply?.preview ?? null)}::text[], ${rows.map((r) => r.reply?.sender ?? null)}::text[],
                ${rows.map((r) => (r.d.mentions ?? []).join(' '))}::text[], ${rows.map((r) => JSON.stringify(r.d.attachments ?? []))}::text[],
                ${rows.map((r) => searchTokens(r.event))}::text[])
      as v(cid, seq, mid, sender, cmid, text, at, ordinal, rseq, rmid, rpreview, rsender, mentions, attachments, tokens)
    on conflict do nothing`.execute(trx);

  const mentions = fresh.flatMap(({ seq, event }) => (event.data.mentions ?? []).map((user_id) => ({ conversation_id: event.data.conversationId, seq, user_id })));
  if (mentions.length) await trx.insertInto('message_mentions').values(mentions).onConflict((oc) => oc.doNothing()).execute();
  const attachments = fresh.flatMap(({ seq, event }) => (event.data.attachments ?? []).map((a) => ({ attachment_id: a.id, conversation_id: event.data.conversationId, seq })));
  if (attachments.length) await trx.insertInto('message_attachments').values(attachments).onConflict((oc) => oc.doNothing()).execute();

  // One statement for every touched conversation: counters and latest message.
  const latest = new Map<string, PendingMessage>();
  for (const m of fresh) latest.set(m.event.data.conversationId, m);
  const ids = [...latest.keys()];
  await sql`
    update conversations c set
      message_count = v.cnt, last_seq = greatest(c.last_seq, v.seq), last_message_seq = v.seq,
      last_activity_at = greatest(c.last_activity_at, v.at)
    from unnest(${ids}::text[], ${ids.map((id) => counts.get(id))}::bigint[], ${ids.map((id) => latest.get(id)!.seq)}::bigint[],
                ${ids.map((id) => new Date(latest.get(id)!.event.at).toISOString())}::timestamptz[]) as v(id, cnt, seq, at)
    where c.id = v.id`.execute(trx);

  // Sending implies having read everything before: advance each sender's own marker (one row per sender, not per member).
  const senders = new Map<string, number>();
  for (const { seq, event } of fresh) senders.set(`${event.data.conversationId}\u0000${event.actor}`, seq);
  const keys = [...senders.keys()].map((k) => k.split('\u0000') as [string, string]);
  await sql`
    update conversation_members m set read_seq = greatest(m.read_seq, v.seq), delivered_seq = greatest(m.delivered_seq, v.seq)
    from unnest(${keys.map((k) => k[0])}::text[], ${keys.map((k) => k[1])}::text[], ${[...senders.values()]}::bigint[]) as v(cid, uid, seq)
    where m.conversation_id = v.cid and m.user_id = v.uid`.execute(trx);
}

async function dropDuplicates(trx: Trx, pending: PendingMessage[]): Promise<PendingMessage[]> {
  const key = (c: string, s: string, k: string) => `${c}\u0000${s}\u0000${k}`;
  // One unique-index probe per key (LATERAL ... LIMIT 1 cannot be turned into a join): with a plain join the
  // planner may sort-merge or hash the whole messages table for every batch, which grows with the table.
  const existing = await sql<{ conversation_id: string; sender_id: string; client_msg_id: string }>`
    select v.c as conversation_id, v.s as sender_id, v.k as client_msg_id
    from unnest(${pending.map((p) => p.event.data.conversationId)}::text[], ${pending.map((p) => p.event.actor)}::text[],
                ${pending.map((p) => p.event.data.clientMsgId)}::text[]) as v(c, s, k)
    cross join lateral (select 1 from messages m where m.conversation_id = v.c and m.sender_id = v.s and m.client_msg_id = v.k limit 1) as found`.execute(trx);
  const seen = new Set(existing.rows.map((r) => key(r.conversation_id, r.sender_id, r.client_msg_id)));
  const seqs = new Set<number>();
  return pending.filter(({ seq, event }) => {
    const k = key(event.data.conversationId, event.actor, event.data.clientMsgId);
    if (seen.has(k) || seqs.has(seq)) return false;
    seen.add(k);
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
