import { sql, type Transaction } from 'kysely';
import { parseEntitySubject } from '../../../contracts/index.js';
import type { Database } from '../../read-store/schema.js';
import type { StoredEvent } from '../../event-log/event-store.js';

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
 */
export async function unapplied(trx: Trx, namespace: string, batch: StoredEvent[]): Promise<{ fresh: StoredEvent[]; users: Map<string, number> }> {
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
  if (convIds.size > 0 || userIds.size > 0) {
    const rows = await sql<{ kind: 'conv' | 'user'; id: string; seq: string }>`
      select 'conv' as kind, id, last_seq as seq from conversations where id = any(${[...convIds]}::text[])
      union all
      select 'user', user_id, last_seq from user_last_seqs where user_id = any(${[...userIds]}::text[])`.execute(trx);
    for (const r of rows.rows) (r.kind === 'conv' ? convSeq : userSeq).set(r.id, Number(r.seq));
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
  return { fresh, users };
}

/** Records the last applied sequence of each user subject of a batch (after its events are applied, same transaction). */
export async function recordUsers(trx: Trx, users: Map<string, number>): Promise<void> {
  if (users.size === 0) return;
  const ids = [...users.keys()];
  await sql`insert into user_last_seqs (user_id, last_seq)
    select * from unnest(${ids}::text[], ${ids.map((id) => users.get(id)!)}::bigint[])
    on conflict (user_id) do update set last_seq = greatest(user_last_seqs.last_seq, excluded.last_seq)`.execute(trx);
}
