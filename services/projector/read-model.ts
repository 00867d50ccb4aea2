import type { Transaction } from 'kysely';
import type { Subjects } from '../../contracts/index.js';
import type { Database } from '../shared/db/schema.js';
import type { StoredEvent } from '../shared/nats/event-store.js';
import type { Projection } from './runner.js';

interface MessageRow {
  conversation_id: string;
  seq: number;
  message_id: string;
  sender_id: string;
  client_msg_id: string;
  text: string;
  created_at: Date;
}

/**
 * Conversations, members and message history. Messages of a batch go in with
 * one multi-row insert and each touched conversation is updated once, so the
 * cost per batch is a handful of statements, not one per event.
 */
export function readModelProjection(subjects: Subjects): Projection {
  return {
    name: 'read-model',
    filterSubjects: [`${subjects.namespace}.ev.conv.*`],
    async apply(trx, batch) {
      const messages: MessageRow[] = [];
      const latest = new Map<string, { seq: number; at: Date; messageSeq: number }>();
      for (const { seq, event } of batch) {
        switch (event.type) {
          case 'conversation.created':
            await applyCreated(trx, seq, event.at, event.actor, event.data);
            break;
          case 'message.sent': {
            const at = new Date(event.at);
            messages.push({
              conversation_id: event.data.conversationId,
              seq,
              message_id: event.data.messageId,
              sender_id: event.actor,
              client_msg_id: event.data.clientMsgId,
              text: event.data.text,
              created_at: at,
            });
            latest.set(event.data.conversationId, { seq, at, messageSeq: seq });
            break;
          }
          default:
            break;
        }
      }
      if (messages.length > 0) {
        // A retried client message id that slipped past the log's dedup window is dropped here by the unique index.
        await trx.insertInto('messages').values(messages).onConflict((oc) => oc.doNothing()).execute();
      }
      for (const [id, l] of latest) {
        await trx
          .updateTable('conversations')
          .set({ last_seq: l.seq, last_activity_at: l.at, last_message_seq: l.messageSeq })
          .where('id', '=', id)
          .where('last_seq', '<', String(l.seq))
          .execute();
      }
    },
  };
}

async function applyCreated(
  trx: Transaction<Database>,
  seq: number,
  at: number,
  actor: string,
  data: { conversationId: string; kind: 'direct' | 'group'; title: string | null; members: { userId: string; role: 'owner' | 'admin' | 'member' }[] },
): Promise<void> {
  const when = new Date(at);
  await trx
    .insertInto('conversations')
    .values({
      id: data.conversationId,
      kind: data.kind,
      title: data.title,
      created_by: actor,
      created_at: when,
      last_seq: seq,
      last_activity_at: when,
      last_message_seq: null,
      member_count: data.members.length,
    })
    .onConflict((oc) => oc.doNothing())
    .execute();
  // Large groups: insert members in chunks to stay under Postgres' parameter limit.
  for (let i = 0; i < data.members.length; i += 5000) {
    const chunk = data.members.slice(i, i + 5000);
    await trx
      .insertInto('conversation_members')
      .values(chunk.map((m) => ({ conversation_id: data.conversationId, user_id: m.userId, role: m.role, joined_seq: seq, joined_at: when })))
      .onConflict((oc) => oc.doNothing())
      .execute();
  }
}
