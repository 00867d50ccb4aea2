import { sql, type Kysely } from 'kysely';

/**
 * Events of the log that every reader ignores, named by `log.tombstoned`
 * events (`parley log tombstone`). The log is the record; this is its index
 * for projections: a replay from the start meets a tombstoned event before
 * its tombstone, so the projection runner looks the batch's sequences up
 * here. Not a projection's table: rebuilds read it and never replace it.
 * Frozen: later changes are new migrations.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('log_tombstones')
    .addColumn('stream', 'text', (c) => c.notNull())
    /** The stream's epoch: a recreated stream's sequences name other events. */
    .addColumn('epoch', 'text', (c) => c.notNull())
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('by', 'text', (c) => c.notNull())
    .addColumn('tombstone_seq', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('log_tombstones_pk', ['stream', 'epoch', 'seq'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('log_tombstones').ifExists().execute();
}
