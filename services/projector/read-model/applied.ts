import { sql, type Transaction } from 'kysely';
import { parseEntitySubject } from '../../../contracts/index.js';
import type { Database } from '../../read-store/schema.js';
import type { StoredEvent } from '../../event-log/event-store.js';
import { clientKey, type SentState } from './messages-sent.js';
import { PREPARED } from '../../read-store/prepared.js';

type Trx = Transaction<Database>;

/** Events that make a conversation's row or go in without one (keyed by client message id): everything else needs the row. */
const WITHOUT_ROW = new Set(['conversation.created', 'message.sent']);

/**
 * What makes the read model idempotent per event: every entity (one subject
 * each, applied in log order) records the stream sequence of the last event
 * applied to it, `conversations.last_seq` and `user_last_seqs.last_seq`, in
 * the same transaction as the event's effects. An event at or below it has
 * been applied and is dropped here, whole, before any handler runs: a reset
 * checkpoint, a redelivery, a re-drive or a replay over the live tables
 * cannot count an edit, a member or a reaction twice, bring back a removed
 * member or revert a later preference. Sequences are the stream's, so they
 * also order events across entities: a user's event older than the member
 * row it would change (the member left and came back since) is dropped too,
 * as the log would have it.
 *
 * A conversation event other than a creation or a send, for a conversation
 * the read model has no row of, has nothing to change (its creation is
 * before the replayed range, or was never applied) and is dropped, and so
 * is an event that is not its subject's own (another conversation's id on a
 * conversation's subject, another actor on a user's): the write side never
 * appends one, and applying it would change an entity whose order it is
 * not in.
 *
 * Costs one indexed lookup per batch (every entity of the batch at once),
 * and, for batches with user events, one upsert at the end (`recordUsers`).
 * The same round trip reads what inserting the batch's messages needs
 * (SentState: message counts, client ids already stored), as nearly every
 * batch of a live stream is messages.
 */
export async function unapplied(
  trx: Trx,
  namespace: string,
  batch: StoredEvent[],
): Promise<{ fresh: StoredEvent[]; users: Map<string, number>; sent: SentState }> {
  const convIds = new Set<string>();
  const userIds = new Set<string>();
  const entities = batch.map(({ subject }) => {
    const e = parseEntitySubject(subject);
    if (!e || !subject.startsWith(`${namespace}.ev.`)) return null;
    (e.kind === 'conv' ? convIds : userIds).add(e.id);
    return e;
  });
  const convSeq = new Map<string, number>();
  const userSeq = new Map<string, number>();
  const sent: SentState = { counts: new Map(), looked: convIds, stored: new Set() };
  const sends = batch.flatMap((b) => (b.event.type === 'message.sent' ? [b.event as Extract<StoredEvent['event'], { type: 'message.sent' }>] : []));
  if (convIds.size > 0 || userIds.size > 0 || sends.length > 0) {
    // A send is probed by its client id with one unique-index lookup each (LATERAL ... LIMIT 1 cannot be turned into
    // a join): with a plain join the planner may sort-merge or hash the whole messages table, which grows with it.
    const rows = await sql<{ kind: 'conv' | 'user' | 'sent'; id: string; seq: string; n: string | null }>`${PREPARED}
      select 'conv' as kind, id, last_seq as seq, message_count as n from conversations where id = any(${[...convIds]}::text[])
      union all
      select 'user', user_id, last_seq, null from user_last_seqs where user_id = any(${[...userIds]}::text[])
      union all
      select 'sent', v.i::text, 0, null
      from unnest(${sends.map((e) => e.data.conversationId)}::text[], ${sends.map((e) => e.actor)}::text[],
                  ${sends.map((e) => e.data.clientMsgId)}::text[]) with ordinality as v(c, s, k, i)
      cross join lateral (select 1 from messages m where m.conversation_id = v.c and m.sender_id = v.s and m.client_msg_id = v.k limit 1) as found`.execute(
      trx,
    );
    for (const r of rows.rows) {
      if (r.kind === 'sent') {
        const e = sends[Number(r.id) - 1]!;
        sent.stored.add(clientKey(e.data.conversationId, e.actor, e.data.clientMsgId));
      } else if (r.kind === 'conv') {
        convSeq.set(r.id, Number(r.seq));
        sent.counts.set(r.id, Number(r.n));
      } else userSeq.set(r.id, Number(r.seq));
    }
  }

  const fresh: StoredEvent[] = [];
  const users = new Map<string, number>();
  batch.forEach((stored, i) => {
    const e = entities[i];
    if (!e) {
      fresh.push(stored);
      return;
    }
    if (e.kind === 'user') {
      // Only the user's own events are applied from their subject (the write side appends nothing else there that
      // the read model reads); an event about someone else would escape this subject's order.
      if (stored.event.actor !== e.id) return;
      if (stored.seq <= (userSeq.get(e.id) ?? 0)) return;
      userSeq.set(e.id, stored.seq);
      users.set(e.id, stored.seq);
      fresh.push(stored);
      return;
    }
    // Likewise an event on a conversation's subject about another conversation: never the write side's.
    if ((stored.event.data as { conversationId?: unknown }).conversationId !== e.id) return;
    const last = convSeq.get(e.id);
    if (last === undefined && !WITHOUT_ROW.has(stored.event.type)) return;
    if (last !== undefined && stored.seq <= last) return;
    // The row exists from its creation on (also for later events of this batch); a send alone makes no row.
    if (stored.event.type === 'conversation.created' && last === undefined) convSeq.set(e.id, stored.seq);
    fresh.push(stored);
  });
  return { fresh, users, sent };
}

/** Records the last applied sequence of each user subject of a batch (after its events are applied, same transaction). */
export async function recordUsers(trx: Trx, users: Map<string, number>): Promise<void> {
  if (users.size === 0) return;
  const ids = [...users.keys()];
  await sql`${PREPARED}insert into user_last_seqs (user_id, last_seq)
    select * from unnest(${ids}::text[], ${ids.map((id) => users.get(id)!)}::bigint[])
    on conflict (user_id) do update set last_seq = greatest(user_last_seqs.last_seq, excluded.last_seq)`.execute(trx);
}
