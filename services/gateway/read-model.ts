import { sql, type Kysely } from 'kysely';
import type { ConversationSummary, MessageView } from '../../contracts/index.js';
import type { Database } from '../shared/db/schema.js';
import { AppError } from '../shared/errors.js';
import type { IdempotencyIndex } from '../shared/write/conversation-commands.js';

const READ_MODEL_PROJECTOR = 'read-model';

interface MessageRow {
  conversation_id: string;
  seq: string;
  message_id: string;
  sender_id: string;
  client_msg_id: string;
  text: string;
  created_at: Date;
}

function toMessageView(r: MessageRow): MessageView {
  return {
    conversationId: r.conversation_id,
    messageId: String(r.message_id),
    seq: Number(r.seq),
    senderId: r.sender_id,
    clientMsgId: r.client_msg_id,
    text: r.text,
    at: r.created_at.getTime(),
  };
}

/** Queries the gateway answers from the Postgres read model. */
export class ReadModel implements IdempotencyIndex {
  constructor(private readonly db: Kysely<Database>) {}

  async findMessage(conversationId: string, senderId: string, clientMsgId: string): Promise<{ seq: number } | null> {
    const row = await this.db
      .selectFrom('messages')
      .select('seq')
      .where('conversation_id', '=', conversationId)
      .where('sender_id', '=', senderId)
      .where('client_msg_id', '=', clientMsgId)
      .executeTakeFirst();
    return row ? { seq: Number(row.seq) } : null;
  }

  async isMember(conversationId: string, userId: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('conversation_members')
      .select('role')
      .where('conversation_id', '=', conversationId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return row !== undefined;
  }

  async conversationIdsOf(userId: string): Promise<string[]> {
    const rows = await this.db.selectFrom('conversation_members').select('conversation_id').where('user_id', '=', userId).execute();
    return rows.map((r) => r.conversation_id);
  }

  /** Newest first; `beforeSeq` is exclusive. Returns one page and the cursor of the next. */
  async history(conversationId: string, beforeSeq: number | undefined, limit: number): Promise<{ messages: MessageView[]; nextCursor: string | null }> {
    let q = this.db.selectFrom('messages').selectAll().where('conversation_id', '=', conversationId);
    if (beforeSeq !== undefined) q = q.where('seq', '<', String(beforeSeq));
    const rows = (await q.orderBy('seq', 'desc').limit(limit + 1).execute()) as MessageRow[];
    const page = rows.slice(0, limit).map(toMessageView);
    const last = page[page.length - 1];
    return { messages: page, nextCursor: rows.length > limit && last ? String(last.seq) : null };
  }

  /** The user's conversations, most recently active first, each with its latest message. */
  async conversationsOf(userId: string, limit: number, cursor: { at: number; id: string } | null): Promise<{ conversations: ConversationSummary[]; nextCursor: string | null }> {
    let q = this.db
      .selectFrom('conversation_members as m')
      .innerJoin('conversations as c', 'c.id', 'm.conversation_id')
      .leftJoin('messages as lm', (j) => j.onRef('lm.conversation_id', '=', 'c.id').onRef('lm.seq', '=', 'c.last_message_seq'))
      .select([
        'c.id',
        'c.kind',
        'c.title',
        'c.member_count',
        'c.created_at',
        'c.last_activity_at',
        'm.role',
        'lm.seq as lm_seq',
        'lm.message_id as lm_message_id',
        'lm.sender_id as lm_sender_id',
        'lm.client_msg_id as lm_client_msg_id',
        'lm.text as lm_text',
        'lm.created_at as lm_created_at',
        sql<string | null>`(select p.user_id from conversation_members p where p.conversation_id = c.id and p.user_id <> ${userId} limit 1)`.as('peer'),
      ])
      .where('m.user_id', '=', userId);
    if (cursor) {
      q = q.where(sql<boolean>`(c.last_activity_at, c.id) < (${new Date(cursor.at)}, ${cursor.id})`);
    }
    const rows = await q.orderBy('c.last_activity_at', 'desc').orderBy('c.id', 'desc').limit(limit + 1).execute();
    const conversations = rows.slice(0, limit).map(
      (r): ConversationSummary => ({
        conversationId: r.id,
        kind: r.kind,
        title: r.title,
        peer: r.kind === 'direct' ? r.peer : null,
        role: r.role,
        memberCount: r.member_count,
        createdAt: r.created_at.getTime(),
        lastActivityAt: r.last_activity_at.getTime(),
        lastMessage:
          r.lm_seq !== null && r.lm_created_at !== null
            ? toMessageView({
                conversation_id: r.id,
                seq: r.lm_seq,
                message_id: r.lm_message_id!,
                sender_id: r.lm_sender_id!,
                client_msg_id: r.lm_client_msg_id!,
                text: r.lm_text!,
                created_at: r.lm_created_at,
              })
            : null,
      }),
    );
    const last = conversations[conversations.length - 1];
    const nextCursor = rows.length > limit && last ? `${last.lastActivityAt}.${last.conversationId}` : null;
    return { conversations, nextCursor };
  }

  /**
   * Read-your-writes: waits until the read model has applied stream sequence
   * `seq`. Answers `timeout` rather than silently returning older data.
   */
  async waitFor(seq: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const row = await this.db
        .selectFrom('projector_checkpoints')
        .select('seq')
        .where('projector', '=', READ_MODEL_PROJECTOR)
        .where('shard', '=', 0)
        .executeTakeFirst();
      if (row && Number(row.seq) >= seq) return;
      if (Date.now() >= deadline) throw new AppError('timeout', `the read model has not reached position ${seq} yet`);
      await new Promise((r) => setTimeout(r, 15));
    }
  }
}

export function parseConversationCursor(cursor: string | undefined): { at: number; id: string } | null {
  if (!cursor) return null;
  const dot = cursor.indexOf('.');
  const at = Number(cursor.slice(0, dot));
  const id = cursor.slice(dot + 1);
  if (dot <= 0 || !Number.isSafeInteger(at) || !/^[dgc]_[A-Za-z0-9_-]+$/.test(id)) throw new AppError('invalid_request', 'invalid cursor');
  return { at, id };
}
