import { sql, type Kysely } from 'kysely';

/**
 * The first read model: conversations, their members, message history and
 * projector checkpoints. Frozen: later changes are new migrations.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('conversations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('title', 'text')
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('last_seq', 'bigint', (c) => c.notNull())
    .addColumn('last_activity_at', 'timestamptz', (c) => c.notNull())
    .addColumn('last_message_seq', 'bigint')
    .addColumn('member_count', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();

  await db.schema
    .createTable('conversation_members')
    .addColumn('conversation_id', 'text', (c) => c.notNull().references('conversations.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('joined_seq', 'bigint', (c) => c.notNull())
    .addColumn('joined_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('conversation_members_pk', ['conversation_id', 'user_id'])
    .execute();
  // "My conversations" is looked up by user.
  await db.schema.createIndex('conversation_members_user_idx').on('conversation_members').columns(['user_id', 'conversation_id']).execute();

  await db.schema
    .createTable('messages')
    .addColumn('conversation_id', 'text', (c) => c.notNull())
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('message_id', 'bigint', (c) => c.notNull())
    .addColumn('sender_id', 'text', (c) => c.notNull())
    .addColumn('client_msg_id', 'text', (c) => c.notNull())
    .addColumn('text', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('messages_pk', ['conversation_id', 'seq'])
    .execute();
  // Idempotent sends beyond the log's dedup window: one message per sender and client id in a conversation.
  await db.schema.createIndex('messages_client_msg_idx').on('messages').columns(['conversation_id', 'sender_id', 'client_msg_id']).unique().execute();
  await db.schema.createIndex('messages_message_id_idx').on('messages').column('message_id').execute();

  await db.schema
    .createTable('projector_checkpoints')
    .addColumn('projector', 'text', (c) => c.notNull())
    .addColumn('shard', 'integer', (c) => c.notNull())
    .addColumn('epoch', 'text', (c) => c.notNull())
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('projector_checkpoints_pk', ['projector', 'shard'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['projector_checkpoints', 'messages', 'conversation_members', 'conversations']) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
