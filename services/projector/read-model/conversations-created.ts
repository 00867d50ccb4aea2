import { sql, type Transaction } from 'kysely';
import type { ConversationEventOf } from '../../../contracts/index.js';
import type { Database } from '../../read-store/schema.js';
import { PREPARED } from '../../read-store/prepared.js';

export type PendingCreation = { seq: number; event: ConversationEventOf<'conversation.created'> };

/**
 * Inserts a run of conversation.created events with two statements (the
 * conversations, then all their members), however many there are: a log
 * full of new 1:1s would otherwise cost two round trips per conversation.
 * Existing rows are left alone, so replaying a creation changes nothing.
 * New members start with their read marker at the join: earlier history is
 * not "unread" for them.
 */
export async function insertConversations(trx: Transaction<Database>, pending: PendingCreation[]): Promise<void> {
  const at = (p: PendingCreation) => new Date(p.event.at).toISOString();
  await sql`${PREPARED}
    insert into conversations (id, kind, title, created_by, created_at, last_seq, last_activity_at, last_message_seq,
      member_count, post_policy, join_policy, from_conversation_id)
    select v.id, v.kind, v.title, v.creator, v.at, v.seq, v.at, null, v.members, v.post_policy, v.join_policy, v.from_id
    from unnest(${pending.map((p) => p.event.data.conversationId)}::text[], ${pending.map((p) => p.event.data.kind)}::text[],
                ${pending.map((p) => p.event.data.title)}::text[], ${pending.map((p) => p.event.actor)}::text[],
                ${pending.map(at)}::timestamptz[], ${pending.map((p) => p.seq)}::bigint[], ${pending.map((p) => p.event.data.members.length)}::int[],
                ${pending.map((p) => p.event.data.postPolicy ?? 'everyone')}::text[], ${pending.map((p) => p.event.data.joinPolicy ?? 'invite')}::text[],
                ${pending.map((p) => p.event.data.fromConversationId ?? null)}::text[])
      as v(id, kind, title, creator, at, seq, members, post_policy, join_policy, from_id)
    on conflict do nothing`.execute(trx);

  // The first mention of a member wins, as it did with one insert per event: decided here, not by row order in SQL.
  const members = new Map<string, { c: string; u: string; role: string; seq: number; at: string }>();
  for (const p of pending) {
    for (const m of p.event.data.members) {
      const key = `${p.event.data.conversationId}\u0000${m.userId}`;
      if (!members.has(key)) members.set(key, { c: p.event.data.conversationId, u: m.userId, role: m.role, seq: p.seq, at: at(p) });
    }
  }
  const rows = [...members.values()];
  await sql`${PREPARED}
    insert into conversation_members (conversation_id, user_id, role, joined_seq, joined_at, read_seq, delivered_seq)
    select v.c, v.u, v.role, v.seq, v.at, v.seq, v.seq
    from unnest(${rows.map((r) => r.c)}::text[], ${rows.map((r) => r.u)}::text[], ${rows.map((r) => r.role)}::text[],
                ${rows.map((r) => r.seq)}::bigint[], ${rows.map((r) => r.at)}::timestamptz[]) as v(c, u, role, seq, at)
    on conflict do nothing`.execute(trx);
}
