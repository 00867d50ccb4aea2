import { sql, type Kysely } from 'kysely';
import type { MessageView, ReceiptsResponse, VersionsResponse } from '../../../contracts/index.js';
import type { Database } from '../../read-store/schema.js';
import { AppError } from '../../runtime/errors.js';
import { searchQuery } from '../../domain/search-tokens.js';
import { MESSAGE_COLUMNS, toMessageViews, type MessageRow } from './message-views.js';

/**
 * History, search, receipts and versions. Every query is scoped to what the
 * viewer may read, and hides messages from users the viewer blocked.
 */
export class MessageQueries {
  constructor(private readonly db: Kysely<Database>) {}

  private notBlocked(viewer: string) {
    return sql<boolean>`sender_id not in (select blocked_user_id from user_blocks where user_id = ${viewer})`;
  }

  /** Newest first; `beforeSeq` is exclusive. */
  async history(
    conversationId: string,
    viewer: string,
    beforeSeq: number | undefined,
    limit: number,
  ): Promise<{ messages: MessageView[]; nextCursor: string | null }> {
    let q = this.db.selectFrom('messages').select(MESSAGE_COLUMNS).where('conversation_id', '=', conversationId).where(this.notBlocked(viewer));
    if (beforeSeq !== undefined) q = q.where('seq', '<', String(beforeSeq));
    const rows = (await q
      .orderBy('seq', 'desc')
      .limit(limit + 1)
      .execute()) as MessageRow[];
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return { messages: await toMessageViews(this.db, page, viewer), nextCursor: rows.length > limit && last ? String(last.seq) : null };
  }

  /** Messages of conversations the viewer is in, matching every term; newest first. */
  async search(viewer: string, text: string, conversationId: string | undefined, limit: number): Promise<MessageView[]> {
    const query = searchQuery(text);
    if (!query) throw new AppError('invalid_request', 'the search text has no searchable terms');
    let q = this.db
      .selectFrom('messages')
      .select(MESSAGE_COLUMNS)
      .where('status', '=', 'active')
      .where(sql<boolean>`search @@ ${query}::tsquery`)
      .where('conversation_id', 'in', this.db.selectFrom('conversation_members').select('conversation_id').where('user_id', '=', viewer))
      .where(this.notBlocked(viewer));
    if (conversationId) q = q.where('conversation_id', '=', conversationId);
    const rows = (await q.orderBy('created_at', 'desc').limit(limit).execute()) as MessageRow[];
    return toMessageViews(this.db, rows, viewer);
  }

  async versions(conversationId: string, seq: number): Promise<VersionsResponse> {
    const rows = await this.db
      .selectFrom('message_versions')
      .select(['version', 'text', 'created_at'])
      .where('conversation_id', '=', conversationId)
      .where('seq', '=', String(seq))
      .orderBy('version')
      .execute();
    if (rows.length === 0) {
      const m = await this.db
        .selectFrom('messages')
        .select(['text', 'created_at', 'status'])
        .where('conversation_id', '=', conversationId)
        .where('seq', '=', String(seq))
        .executeTakeFirst();
      if (!m) throw new AppError('not_found', 'no such message');
      return { versions: m.status === 'active' ? [{ version: 0, text: m.text, at: m.created_at.getTime() }] : [] };
    }
    return { versions: rows.map((r) => ({ version: r.version, text: r.text, at: r.created_at.getTime() })) };
  }

  async receipts(conversationId: string, seq: number): Promise<ReceiptsResponse> {
    const msg = await this.db
      .selectFrom('messages')
      .select('sender_id')
      .where('conversation_id', '=', conversationId)
      .where('seq', '=', String(seq))
      .executeTakeFirst();
    if (!msg) throw new AppError('not_found', 'no such message');
    const rows = await this.db
      .selectFrom('conversation_members')
      .select(['user_id', 'read_seq', 'delivered_seq'])
      .where('conversation_id', '=', conversationId)
      .where('user_id', '<>', msg.sender_id)
      .where('delivered_seq', '>=', String(seq))
      .orderBy('user_id')
      .execute();
    return {
      seq,
      seenBy: rows.filter((r) => Number(r.read_seq) >= seq).map((r) => r.user_id),
      deliveredTo: rows.map((r) => r.user_id),
    };
  }

  /** True when the viewer is a member of a conversation whose (non-recalled) messages reference the attachment. */
  async canDownload(attachmentId: string, viewer: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('message_attachments as a')
      .innerJoin('conversation_members as m', 'm.conversation_id', 'a.conversation_id')
      .select('a.seq')
      .where('a.attachment_id', '=', attachmentId)
      .where('m.user_id', '=', viewer)
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }
}
