import { sql, type Kysely } from 'kysely';

/**
 * Parked (dead-lettered) events of the projectors. An event that keeps
 * failing is parked with its reason (`status = 'parked'`); later events of
 * the same entity (a conversation's or a user's subject) are parked behind
 * it (`'held'`) so that entity's order is kept while every other entity
 * flows. Re-driving applies them in order and marks them `'redriven'`; an
 * operator may also `'discard'` one. Frozen: later changes are new migrations.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('parked_events')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('projector', 'text', (c) => c.notNull())
    .addColumn('shard', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    /** `conv:<id>` or `user:<id>`: the unit whose order parking preserves. */
    .addColumn('entity', 'text', (c) => c.notNull())
    .addColumn('event_type', 'text')
    .addColumn('reason', 'text', (c) => c.notNull())
    /** The stored bytes, exactly as in the log, so a re-drive parses them again (with today's upcasters). */
    .addColumn('payload', 'bytea', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('parked_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('resolved_at', 'timestamptz')
    .addUniqueConstraint('parked_events_seq_uq', ['projector', 'shard', 'seq'])
    .execute();
  // The projector asks "which entities are blocked?" once per batch: keep that to an index-only look at the open rows.
  await db.schema
    .createIndex('parked_events_open_idx')
    .on('parked_events')
    .columns(['projector', 'shard', 'entity', 'seq'])
    .where(sql.ref('status'), 'in', sql`('parked', 'held')`)
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('parked_events').ifExists().execute();
}
