import { sql, type Kysely } from 'kysely';
import type { ConversationSummary, UnreadResponse } from '../../../contracts/index.js';
import type { Database } from '../../read-store/schema.js';
import { AppError } from '../../runtime/errors.js';
import { MESSAGE_COLUMNS, toMessageViews, type MessageRow } from './message-views.js';

/**
 * Per-user views of conversations. Unread counts come from ordinals: the
 * conversation's message count minus the ordinal of the last message at or
 * before the member's read marker, so no per-member row changes per message.
 */
export class ConversationQueries {
  constructor(private readonly db: Kysely<Database>) {}

  private memberships(userId: string) {
    return this.db
      .selectFrom('conversation_members as m')
      .innerJoin('conversations as c', 'c.id', 'm.conversation_id')
      .where('m.user_id', '=', userId)
      .select([
        'c.id',
        'c.kind',
        'c.title',
        'c.member_count',
        'c.created_at',
        'c.last_activity_at',
        'c.last_message_seq',
        'c.post_policy',
        'c.join_policy',
        'm.role',
        'm.read_seq',
        'm.muted_until',
        'm.pinned',
        'm.archived',
        sql<string>`c.message_count - coalesce((select r.ordinal from messages r where r.conversation_id = c.id and r.seq <= m.read_seq order by r.seq desc limit 1), 0)`.as(
          'unread',
        ),
        sql<string>`(select count(*) from message_mentions mm where mm.user_id = m.user_id and mm.conversation_id = c.id and mm.seq > m.read_seq)`.as(
          'mention_count',
        ),
        sql<string | null>`(select p.user_id from conversation_members p where p.conversation_id = c.id and p.user_id <> m.user_id limit 1)`.as('peer'),
      ]);
  }

  /** Pinned first, then most recently active; archived ones only when asked for. */
  async list(
    userId: string,
    limit: number,
    cursor: string | undefined,
    archived: boolean,
  ): Promise<{ conversations: ConversationSummary[]; nextCursor: string | null }> {
    const after = parseCursor(cursor);
    let q = this.memberships(userId).where('m.archived', '=', archived);
    if (after) q = q.where(sql<boolean>`(m.pinned::int, c.last_activity_at, c.id) < (${after.pinned}, ${new Date(after.at)}, ${after.id})`);
    const rows = await q
      .orderBy('m.pinned', 'desc')
      .orderBy('c.last_activity_at', 'desc')
      .orderBy('c.id', 'desc')
      .limit(limit + 1)
      .execute();
    const page = rows.slice(0, limit);
    const lastSeqs = page.filter((r) => r.last_message_seq !== null).map((r) => ({ c: r.id, s: r.last_message_seq! }));
    const lastRows = lastSeqs.length
      ? ((await this.db
          .selectFrom('messages')
          .select(MESSAGE_COLUMNS)
          .where(sql<boolean>`(conversation_id, seq) in (select * from unnest(${lastSeqs.map((l) => l.c)}::text[], ${lastSeqs.map((l) => l.s)}::bigint[]))`)
          .execute()) as MessageRow[])
      : [];
    const views = new Map((await toMessageViews(this.db, lastRows, userId)).map((v) => [v.conversationId, v]));
    const conversations = page.map(
      (r): ConversationSummary => ({
        conversationId: r.id,
        kind: r.kind,
        title: r.title,
        peer: r.kind === 'direct' ? r.peer : null,
        role: r.role,
        memberCount: r.member_count,
        postPolicy: r.post_policy,
        joinPolicy: r.join_policy,
        unread: Math.max(0, Number(r.unread)),
        mentions: Number(r.mention_count),
        readSeq: Number(r.read_seq),
        mutedUntil: r.muted_until ? r.muted_until.getTime() : null,
        pinned: r.pinned,
        archived: r.archived,
        createdAt: r.created_at.getTime(),
        lastActivityAt: r.last_activity_at.getTime(),
        lastMessage: views.get(r.id) ?? null,
      }),
    );
    const last = page[page.length - 1];
    const nextCursor = rows.length > limit && last ? `${last.pinned ? 1 : 0}.${last.last_activity_at.getTime()}.${last.id}` : null;
    return { conversations, nextCursor };
  }

  /** Unread and mention counts for every conversation with any; muted conversations are listed but not in the totals. */
  async unread(userId: string): Promise<UnreadResponse> {
    const rows = await this.memberships(userId).execute();
    const now = Date.now();
    const conversations = rows
      .map((r) => ({
        conversationId: r.id,
        unread: Math.max(0, Number(r.unread)),
        mentions: Number(r.mention_count),
        muted: r.muted_until !== null && r.muted_until.getTime() > now,
      }))
      .filter((c) => c.unread > 0 || c.mentions > 0);
    const counted = conversations.filter((c) => !c.muted);
    return { total: counted.reduce((n, c) => n + c.unread, 0), mentions: counted.reduce((n, c) => n + c.mentions, 0), conversations };
  }

  /** Which of `others` share at least one conversation with `userId` (presence is visible only to them). */
  async sharingWith(userId: string, others: string[]): Promise<Set<string>> {
    if (others.length === 0) return new Set();
    const rows = await this.db
      .selectFrom('conversation_members as a')
      .innerJoin('conversation_members as b', 'b.conversation_id', 'a.conversation_id')
      .select('b.user_id')
      .distinct()
      .where('a.user_id', '=', userId)
      .where('b.user_id', 'in', others)
      .execute();
    return new Set(rows.map((r) => r.user_id));
  }
}

function parseCursor(cursor: string | undefined): { pinned: number; at: number; id: string } | null {
  if (!cursor) return null;
  const m = /^([01])\.([0-9]{1,16})\.([dgc]_[A-Za-z0-9_-]+)$/.exec(cursor);
  if (!m) throw new AppError('invalid_request', 'invalid cursor');
  return { pinned: Number(m[1]), at: Number(m[2]), id: m[3]! };
}
