import { sql, type Transaction } from 'kysely';
import type { ConversationEvent } from '../../../contracts/index.js';
import type { Database } from '../../read-store/schema.js';

type Trx = Transaction<Database>;

/** Conversation and membership events (everything on a conversation's subject except messages and creations, which go in by runs). */
export async function applyConversationEvent(trx: Trx, seq: number, event: ConversationEvent): Promise<void> {
  const id = event.data.conversationId;
  const when = new Date(event.at);
  switch (event.type) {
    case 'conversation.renamed':
      await trx.updateTable('conversations').set({ title: event.data.title }).where('id', '=', id).execute();
      return;
    case 'channel.policies_changed':
      await trx.updateTable('conversations').set({ post_policy: event.data.postPolicy, join_policy: event.data.joinPolicy }).where('id', '=', id).execute();
      return;
    case 'members.added': {
      const added = await insertMembers(trx, id, event.data.members, seq, when);
      if (added > 0)
        await trx
          .updateTable('conversations')
          .set({ member_count: sql`member_count + ${added}` })
          .where('id', '=', id)
          .execute();
      return;
    }
    case 'member.removed': {
      const r = await trx.deleteFrom('conversation_members').where('conversation_id', '=', id).where('user_id', '=', event.data.userId).executeTakeFirst();
      if (r.numDeletedRows > 0n) await trx.updateTable('conversations').set({ member_count: sql`member_count - 1` }).where('id', '=', id).execute();
      return;
    }
    case 'member.role_changed':
      await trx
        .updateTable('conversation_members')
        .set({ role: event.data.role })
        .where('conversation_id', '=', id)
        .where('user_id', '=', event.data.userId)
        .execute();
      return;
    case 'ownership.transferred':
      await trx.updateTable('conversation_members').set({ role: 'admin' }).where('conversation_id', '=', id).where('user_id', '=', event.data.from).execute();
      await trx.updateTable('conversation_members').set({ role: 'owner' }).where('conversation_id', '=', id).where('user_id', '=', event.data.to).execute();
      return;
    default:
      return;
  }
}

/** New members start with their read marker at the join: earlier history is not "unread" for them. */
async function insertMembers(
  trx: Trx,
  id: string,
  members: { userId: string; role: 'owner' | 'admin' | 'member' }[],
  seq: number,
  when: Date,
): Promise<number> {
  let added = 0;
  // Chunks keep large channels under Postgres' bind-parameter limit.
  for (let i = 0; i < members.length; i += 5000) {
    const chunk = members.slice(i, i + 5000);
    const r = await trx
      .insertInto('conversation_members')
      .values(chunk.map((m) => ({ conversation_id: id, user_id: m.userId, role: m.role, joined_seq: seq, joined_at: when, read_seq: seq, delivered_seq: seq })))
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    added += Number(r.numInsertedOrUpdatedRows ?? 0n);
  }
  return added;
}
