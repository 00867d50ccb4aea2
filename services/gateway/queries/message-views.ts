import { sql, type Kysely } from 'kysely';
import type { AttachmentRef, MessageView } from '../../../contracts/index.js';
import type { Database } from '../../read-store/schema.js';

export interface MessageRow {
  conversation_id: string;
  seq: string;
  message_id: string;
  sender_id: string;
  client_msg_id: string;
  text: string;
  created_at: Date;
  status: 'active' | 'recalled' | 'deleted';
  edited_at: Date | null;
  edit_count: number;
  reply_to_seq: string | null;
  reply_to_message_id: string | null;
  reply_preview: string | null;
  reply_sender_id: string | null;
  mentions: string[];
  attachments: unknown;
}

export const MESSAGE_COLUMNS = [
  'conversation_id',
  'seq',
  'message_id',
  'sender_id',
  'client_msg_id',
  'text',
  'created_at',
  'status',
  'edited_at',
  'edit_count',
  'reply_to_seq',
  'reply_to_message_id',
  'reply_preview',
  'reply_sender_id',
  'mentions',
  'attachments',
] as const;

const REACTION_USERS_SHOWN = 20;

/** Turns message rows into views, with reaction summaries fetched for the whole page in one query. */
export async function toMessageViews(db: Kysely<Database>, rows: MessageRow[], viewer: string): Promise<MessageView[]> {
  const reactions = new Map<string, MessageView['reactions']>();
  if (rows.length) {
    const r = await sql<{ conversation_id: string; seq: string; emoji: string; users: string[]; n: string }>`
      select conversation_id, seq, emoji, (array_agg(user_id order by reacted_at, user_id))[1:${REACTION_USERS_SHOWN}] as users, count(*) as n,
             bool_or(user_id = ${viewer}) as mine
      from message_reactions
      where (conversation_id, seq) in (select * from unnest(${rows.map((m) => m.conversation_id)}::text[], ${rows.map((m) => m.seq)}::bigint[]))
      group by conversation_id, seq, emoji
      order by min(reacted_at)`.execute(db);
    for (const x of r.rows as ((typeof r.rows)[number] & { mine: boolean })[]) {
      const k = `${x.conversation_id}:${x.seq}`;
      const list = reactions.get(k) ?? [];
      list.push({ emoji: x.emoji, count: Number(x.n), users: x.users, mine: x.mine });
      reactions.set(k, list);
    }
  }
  return rows.map((r) => ({
    conversationId: r.conversation_id,
    messageId: String(r.message_id),
    seq: Number(r.seq),
    senderId: r.sender_id,
    clientMsgId: r.client_msg_id,
    text: r.text,
    at: r.created_at.getTime(),
    status: r.status,
    editedAt: r.edited_at ? r.edited_at.getTime() : null,
    editCount: r.edit_count,
    replyTo: r.reply_to_seq
      ? { messageId: String(r.reply_to_message_id), seq: Number(r.reply_to_seq), senderId: r.reply_sender_id, preview: r.reply_preview }
      : null,
    mentions: r.mentions,
    attachments: (r.attachments ?? []) as AttachmentRef[],
    reactions: reactions.get(`${r.conversation_id}:${r.seq}`) ?? [],
  }));
}
