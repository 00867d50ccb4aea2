import { sql, type Transaction } from 'kysely';
import type { UserEvent } from '../../../contracts/index.js';
import type { Database } from '../../read-store/schema.js';

/**
 * Events on a user's subject: markers (monotonic), preferences, blocks. Membership is projected from conversation events.
 * `unordered`: the user's and the conversations' events are not applied in one log order (several shards), so a
 * preference names the membership it was decided against.
 */
export async function applyUserEvent(trx: Transaction<Database>, event: UserEvent, unordered = false): Promise<void> {
  const user = event.actor;
  switch (event.type) {
    case 'read.marked':
      await trx
        .updateTable('conversation_members')
        .set({ read_seq: sql`greatest(read_seq, ${event.data.seq})`, delivered_seq: sql`greatest(delivered_seq, ${event.data.seq})` })
        .where('conversation_id', '=', event.data.conversationId)
        .where('user_id', '=', user)
        .execute();
      return;
    case 'delivered.marked':
      await trx
        .updateTable('conversation_members')
        .set({ delivered_seq: sql`greatest(delivered_seq, ${event.data.seq})` })
        .where('conversation_id', '=', event.data.conversationId)
        .where('user_id', '=', user)
        .execute();
      return;
    case 'preferences.set': {
      const d = event.data;
      const set: Record<string, unknown> = {};
      if (d.mutedUntil !== undefined) set.muted_until = d.mutedUntil === null ? null : new Date(d.mutedUntil);
      if (d.pinned !== undefined) set.pinned = d.pinned;
      if (d.archived !== undefined) set.archived = d.archived;
      let update = trx.updateTable('conversation_members').set(set).where('conversation_id', '=', d.conversationId).where('user_id', '=', user);
      // Only the membership the write side checked: applied after the conversation's later events (another shard's
      // runner ahead, or a rebuild, which replays conversations first), the member may have left and joined again
      // since, and that new row starts afresh as it would have in log order.
      if (unordered && d.conversationSeq !== undefined) update = update.where('joined_seq', '<=', String(d.conversationSeq));
      await update.execute();
      return;
    }
    case 'user.blocked':
      await trx
        .insertInto('user_blocks')
        .values({ user_id: user, blocked_user_id: event.data.userId, blocked_at: new Date(event.at) })
        .onConflict((oc) => oc.doNothing())
        .execute();
      return;
    case 'user.unblocked':
      await trx.deleteFrom('user_blocks').where('user_id', '=', user).where('blocked_user_id', '=', event.data.userId).execute();
      return;
    default:
      return;
  }
}
