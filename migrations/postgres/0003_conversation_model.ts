import { sql, type Kysely } from 'kysely';

/**
 * The complete conversation model: roles and channel policies, per-member
 * read/delivery markers and preferences, message status, replies, mentions,
 * edits, reactions, attachments, blocks, and full-text search.
 *
 * Unread counts use ordinals: each message gets its conversation's running
 * message number, so "unread" is last ordinal minus the ordinal at the
 * member's read marker: one index lookup, and no per-member write per message.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('conversations')
    .addColumn('post_policy', 'text', (c) => c.notNull().defaultTo('everyone'))
    .addColumn('join_policy', 'text', (c) => c.notNull().defaultTo('invite'))
    .addColumn('from_conversation_id', 'text')
    .addColumn('message_count', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();

  await db.schema
    .alterTable('conversation_members')
    .addColumn('read_seq', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('delivered_seq', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('muted_until', 'timestamptz')
    .addColumn('pinned', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('archived', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();

  await db.schema
    .alterTable('messages')
    .addColumn('ordinal', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('active'))
    .addColumn('reply_to_seq', 'bigint')
    .addColumn('reply_to_message_id', 'bigint')
    .addColumn('reply_preview', 'text')
    .addColumn('reply_sender_id', 'text')
    .addColumn('mentions', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('attachments', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('edited_at', 'timestamptz')
    .addColumn('edit_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('search', sql`tsvector`)
    .execute();
  await db.schema.createIndex('messages_search_idx').on('messages').using('gin').column('search').execute();
  await db.schema
    .createIndex('messages_reply_idx')
    .on('messages')
    .columns(['conversation_id', 'reply_to_seq'])
    .where(sql.ref('reply_to_seq'), 'is not', null)
    .execute();

  await db.schema
    .createTable('message_versions')
    .addColumn('conversation_id', 'text', (c) => c.notNull())
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('text', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('message_versions_pk', ['conversation_id', 'seq', 'version'])
    .execute();

  await db.schema
    .createTable('message_reactions')
    .addColumn('conversation_id', 'text', (c) => c.notNull())
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('emoji', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('reacted_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('message_reactions_pk', ['conversation_id', 'seq', 'emoji', 'user_id'])
    .execute();

  await db.schema
    .createTable('message_mentions')
    .addColumn('conversation_id', 'text', (c) => c.notNull())
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('message_mentions_pk', ['conversation_id', 'seq', 'user_id'])
    .execute();
  await db.schema.createIndex('message_mentions_user_idx').on('message_mentions').columns(['user_id', 'conversation_id', 'seq']).execute();

  await db.schema
    .createTable('message_attachments')
    .addColumn('attachment_id', 'text', (c) => c.notNull())
    .addColumn('conversation_id', 'text', (c) => c.notNull())
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('message_attachments_pk', ['attachment_id', 'conversation_id', 'seq'])
    .execute();

  await db.schema
    .createTable('user_blocks')
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('blocked_user_id', 'text', (c) => c.notNull())
    .addColumn('blocked_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('user_blocks_pk', ['user_id', 'blocked_user_id'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['user_blocks', 'message_attachments', 'message_mentions', 'message_reactions', 'message_versions'])
    await db.schema.dropTable(t).ifExists().execute();
}
