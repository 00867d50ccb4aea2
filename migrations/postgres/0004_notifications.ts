import { sql, type Kysely } from 'kysely';

/**
 * Notifications for offline members (docs/notifications.md): the channels
 * devices register, one row per notification (a coalescing window of one
 * conversation for one user), one row per delivery of it to a channel, the
 * notifier's high-water mark, and the server's VAPID key pair. Frozen: later
 * changes are new migrations.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('notification_channels')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    /** Webhook URL or push service endpoint. */
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('secret', 'text')
    .addColumn('p256dh', 'text')
    .addColumn('auth', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    // A device re-subscribing with the same endpoint replaces its row instead of adding a second one.
    .addUniqueConstraint('notification_channels_user_url_uq', ['user_id', 'url'])
    .execute();

  await db.schema
    .createTable('notifications')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('conversation_id', 'text', (c) => c.notNull())
    .addColumn('conversation_kind', 'text', (c) => c.notNull())
    .addColumn('title', 'text')
    .addColumn('first_seq', 'bigint', (c) => c.notNull())
    .addColumn('last_seq', 'bigint', (c) => c.notNull())
    .addColumn('message_count', 'integer', (c) => c.notNull())
    .addColumn('mentioned', 'boolean', (c) => c.notNull())
    .addColumn('sender_id', 'text', (c) => c.notNull())
    .addColumn('preview', 'text')
    .addColumn('first_at', 'timestamptz', (c) => c.notNull())
    .addColumn('last_at', 'timestamptz', (c) => c.notNull())
    /** The coalescing window closes here (first message's time + window): delivery starts. */
    .addColumn('due_at', 'timestamptz', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    /** Deliveries have been created; later messages open a new window instead of joining this one. */
    .addColumn('dispatched', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('sent_at', 'timestamptz')
    .addColumn('cleared_at', 'timestamptz')
    // The identity of a window: replaying the log finds the row and creates nothing.
    .addUniqueConstraint('notifications_window_uq', ['user_id', 'conversation_id', 'first_seq'])
    .execute();
  await db.schema.createIndex('notifications_user_idx').on('notifications').columns(['user_id', 'id']).execute();
  // Coalescing and clearing look up a user's open rows in a conversation; a recall those of the whole conversation.
  await db.schema
    .createIndex('notifications_open_idx')
    .on('notifications')
    .columns(['conversation_id', 'user_id'])
    .where(sql.ref('status'), '=', 'pending')
    .execute();
  await db.schema
    .createIndex('notifications_due_idx')
    .on('notifications')
    .column('due_at')
    .where(sql<boolean>`status = 'pending' and not dispatched`)
    .execute();

  await db.schema
    .createTable('notification_deliveries')
    .addColumn('notification_id', 'bigint', (c) => c.notNull().references('notifications.id').onDelete('cascade'))
    .addColumn('channel_id', 'text', (c) => c.notNull().references('notification_channels.id').onDelete('cascade'))
    /** pending, sending (claimed until lease_until), sent, failed, cleared. */
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz', (c) => c.notNull())
    .addColumn('lease_until', 'timestamptz')
    .addColumn('last_error', 'text')
    .addColumn('sent_at', 'timestamptz')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('notification_deliveries_pk', ['notification_id', 'channel_id'])
    .execute();
  await db.schema
    .createIndex('notification_deliveries_due_idx')
    .on('notification_deliveries')
    .column('next_attempt_at')
    .where(sql<boolean>`status in ('pending', 'sending')`)
    .execute();

  // Highest stream sequence the notifier has ever evaluated: a reset checkpoint replays the log without notifying anyone again.
  await db.schema
    .createTable('notifier_marks')
    .addColumn('shard', 'integer', (c) => c.primaryKey())
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .execute();

  // One key pair per deployment, shared by every gateway (which serves the public key) and notifier (which signs).
  await db.schema
    .createTable('notification_vapid_keys')
    .addColumn('id', 'smallint', (c) => c.primaryKey().check(sql`id = 1`))
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('private_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['notification_vapid_keys', 'notifier_marks', 'notification_deliveries', 'notifications', 'notification_channels']) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
