import { sql, type Transaction } from 'kysely';
import type { ConversationEvent } from '../../../contracts/index.js';
import type { Database } from '../../read-store/schema.js';
import { indexTokens } from '../../domain/search-tokens.js';

type Trx = Transaction<Database>;

/** Edits, recalls, deletions and reactions of existing messages. */
export async function applyMessageChange(trx: Trx, seq: number, event: ConversationEvent): Promise<void> {
  switch (event.type) {
    case 'message.edited': {
      const { conversationId: c, target, text, mentions } = event.data;
      const where = { c, s: String(target.seq) };
      // Keep the original as version 0 the first time a message is edited.
      await sql`insert into message_versions (conversation_id, seq, version, text, created_at)
        select conversation_id, seq, 0, text, created_at from messages
        where conversation_id = ${where.c} and seq = ${where.s} and edit_count = 0 and status = 'active'
        on conflict do nothing`.execute(trx);
      const updated = await trx
        .updateTable('messages')
        .set({
          text,
          edited_at: new Date(event.at),
          edit_count: sql`edit_count + 1`,
          mentions: mentions ?? [],
          search: sql`array_to_tsvector(${indexTokens(text)}::text[])` as never,
        })
        .where('conversation_id', '=', c)
        .where('seq', '=', where.s)
        .where('status', '=', 'active')
        .returning('edit_count')
        .executeTakeFirst();
      if (!updated) return;
      await trx
        .insertInto('message_versions')
        .values({ conversation_id: c, seq: target.seq, version: updated.edit_count, text, created_at: new Date(event.at) })
        .onConflict((oc) => oc.doNothing())
        .execute();
      await trx.deleteFrom('message_mentions').where('conversation_id', '=', c).where('seq', '=', where.s).execute();
      if (mentions?.length)
        await trx
          .insertInto('message_mentions')
          .values(mentions.map((user_id) => ({ conversation_id: c, seq: target.seq, user_id })))
          .execute();
      return;
    }
    case 'message.recalled':
    case 'message.deleted': {
      const { conversationId: c, target } = event.data;
      const s = String(target.seq);
      // The content leaves every read model: text, versions, search, mentions, reactions, attachments and quotes of it.
      await trx
        .updateTable('messages')
        .set({
          status: event.type === 'message.recalled' ? 'recalled' : 'deleted',
          text: '',
          mentions: [],
          attachments: '[]',
          search: null as never,
          reply_preview: null,
        })
        .where('conversation_id', '=', c)
        .where('seq', '=', s)
        .execute();
      for (const table of ['message_versions', 'message_reactions', 'message_mentions', 'message_attachments'] as const) {
        await trx.deleteFrom(table).where('conversation_id', '=', c).where('seq', '=', s).execute();
      }
      await trx.updateTable('messages').set({ reply_preview: null }).where('conversation_id', '=', c).where('reply_to_seq', '=', String(target.seq)).execute();
      return;
    }
    case 'reaction.added':
      await trx
        .insertInto('message_reactions')
        .values({
          conversation_id: event.data.conversationId,
          seq: event.data.target.seq,
          emoji: event.data.emoji,
          user_id: event.actor,
          reacted_at: new Date(event.at),
        })
        .onConflict((oc) => oc.doNothing())
        .execute();
      return;
    case 'reaction.removed':
      await trx
        .deleteFrom('message_reactions')
        .where('conversation_id', '=', event.data.conversationId)
        .where('seq', '=', String(event.data.target.seq))
        .where('emoji', '=', event.data.emoji)
        .where('user_id', '=', event.actor)
        .execute();
      return;
    default:
      void seq;
      return;
  }
}
