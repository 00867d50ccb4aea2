import type { Kysely } from 'kysely';

/**
 * The read model applies each event once (docs/operations.md, "Idempotent
 * per event"): an event at or below its entity's last applied sequence is
 * skipped. Conversations carry theirs (`conversations.last_seq`); this table
 * carries each user subject's: the stream sequence of the last event of
 * `<ns>.ev.user.<user_id>` the read model applied. Frozen: later changes are
 * new migrations.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('user_last_seqs')
    .addColumn('user_id', 'text', (c) => c.primaryKey())
    .addColumn('last_seq', 'bigint', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('user_last_seqs').ifExists().execute();
}
