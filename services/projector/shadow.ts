import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../read-store/schema.js';
import { quoteIdent } from '../projection/checkpoint.js';

type Db = Kysely<Database> | Transaction<Database>;

/** Tables every shadow schema gets besides the projection's own: its checkpoint and its parked events. */
export const RUNNER_TABLES = ['projector_checkpoints', 'parked_events'] as const;

/**
 * Creates `schema` with empty copies of `tables` (columns, defaults, checks,
 * primary keys, unique constraints and indexes under their original names,
 * foreign keys between the copied tables) plus the runner's own tables.
 * Index and constraint names are schema-local, so after a swap the new live
 * tables carry exactly the names later migrations expect.
 *
 * Plain (non-unique) indexes are returned instead of created: building them
 * once after the bulk load is much cheaper than maintaining them row by row
 * (a GIN full-text index above all). Primary keys, unique constraints and
 * unique indexes exist from the start: ON CONFLICT depends on them.
 */
export async function createShadowSchema(db: Kysely<Database>, schema: string, tables: readonly string[]): Promise<string[]> {
  const s = quoteIdent(schema);
  const deferred: string[] = [];
  await db.transaction().execute(async (trx) => {
    for (const t of tables) await refuseUnsupported(trx, t);
    await sql.raw(`create schema ${s}`).execute(trx);
    for (const t of [...tables, ...RUNNER_TABLES]) {
      // (Unlogged tables made permanent before the swap were measured slower end to end: SET LOGGED rewrites every table.)
      const runner = RUNNER_TABLES.includes(t as never);
      const like = runner
        ? 'including all'
        : 'including defaults including generated including identity including storage including comments including constraints';
      // No autovacuum while loading (it would analyze and vacuum tables that only grow); finishShadowTables analyzes once.
      await sql
        .raw(`create table ${s}.${quoteIdent(t)} (like public.${quoteIdent(t)} ${like})${runner ? '' : ' with (autovacuum_enabled = false)'}`)
        .execute(trx);
    }
    // Definitions are read with only `public` visible (so they name tables unqualified) and run with the shadow schema first.
    await sql`select set_config('search_path', 'public', true)`.execute(trx);
    const ddl: string[] = [];
    const fks: string[] = [];
    for (const t of tables) {
      const constraints = await sql<{ name: string; type: string; def: string; ref: string | null }>`
        select conname as name, contype as type, pg_get_constraintdef(oid) as def, confrelid::regclass::text as ref
        from pg_constraint where conrelid = ${`public.${t}`}::regclass and contype in ('p', 'u', 'x', 'f') order by contype, conname`.execute(trx);
      for (const c of constraints.rows) {
        const stmt = `alter table ${s}.${quoteIdent(t)} add constraint ${quoteIdent(c.name)} ${c.def}`;
        if (c.type !== 'f') ddl.push(stmt);
        else if (c.ref && tables.includes(c.ref)) fks.push(stmt);
        else throw new Error(`${t}.${c.name} references ${c.ref}, which the projection does not own; it cannot be rebuilt on its own`);
      }
      const indexes = await sql<{ def: string; unique: boolean }>`
        select pg_get_indexdef(i.indexrelid) as def, i.indisunique as unique from pg_index i
        where i.indrelid = ${`public.${t}`}::regclass and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid)`.execute(trx);
      // Unique indexes decide what ON CONFLICT drops: they must exist while the projection applies events.
      for (const { def, unique } of indexes.rows) (unique ? ddl : deferred).push(retarget(def, t, schema));
    }
    await sql`select set_config('search_path', ${`${s}, public`}, true)`.execute(trx);
    for (const stmt of [...ddl, ...fks]) await sql.raw(stmt).execute(trx);
  });
  return deferred;
}

/** After the bulk load: builds the indexes createShadowSchema deferred and refreshes the planner's statistics. */
export async function finishShadowTables(db: Kysely<Database>, schema: string, tables: readonly string[], deferred: string[]): Promise<void> {
  const s = quoteIdent(schema);
  await db.transaction().execute(async (trx) => {
    await sql`select set_config('search_path', ${`${s}, public`}, true)`.execute(trx);
    for (const stmt of deferred) await sql.raw(stmt).execute(trx);
  });
  for (const t of tables) {
    await sql.raw(`alter table ${s}.${quoteIdent(t)} reset (autovacuum_enabled)`).execute(db);
    await sql.raw(`analyze ${s}.${quoteIdent(t)}`).execute(db);
  }
}

function retarget(indexDef: string, table: string, schema: string): string {
  const on = new RegExp(` ON (ONLY )?(public\\.)?"?${table}"? `);
  if (!on.test(indexDef)) throw new Error(`cannot copy index definition: ${indexDef}`);
  return indexDef.replace(on, ` ON $1${quoteIdent(schema)}.${quoteIdent(table)} `);
}

/** What a copy by LIKE would silently lose, and what a swap would break. */
async function refuseUnsupported(trx: Transaction<Database>, table: string): Promise<void> {
  const rel = `public.${table}`;
  const problems = await sql<{ what: string }>`
    select 'trigger ' || tgname as what from pg_trigger where tgrelid = ${rel}::regclass and not tgisinternal
    union all
    select 'view ' || v.oid::regclass::text from pg_depend d join pg_rewrite r on r.oid = d.objid join pg_class v on v.oid = r.ev_class
      where d.refobjid = ${rel}::regclass and v.oid <> ${rel}::regclass
    union all
    select 'sequence default on ' || attname from pg_attrdef ad join pg_attribute a on a.attrelid = ad.adrelid and a.attnum = ad.adnum
      where ad.adrelid = ${rel}::regclass and pg_get_expr(ad.adbin, ad.adrelid) like 'nextval(%'`.execute(trx);
  if (problems.rows.length > 0) {
    throw new Error(`table ${table} cannot be rebuilt by swapping: it has ${problems.rows.map((p) => p.what).join(', ')}`);
  }
}

/**
 * A content hash per table: md5 over every row's text, in primary-key order.
 * Two tables with the same rows hash the same whatever order they were
 * written in.
 */
export async function tableHash(db: Db, schema: string, table: string): Promise<{ rows: number; md5: string }> {
  const rel = `${quoteIdent(schema)}.${quoteIdent(table)}`;
  const pk = await sql<{ col: string }>`
    select a.attname as col from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
    where i.indrelid = ${rel}::regclass and i.indisprimary order by array_position(i.indkey, a.attnum)`.execute(db);
  const order = pk.rows.length > 0 ? pk.rows.map((r) => `t.${quoteIdent(r.col)}`).join(', ') : 't::text';
  const r = await sql<{ n: string; h: string }>`
    select count(*) as n, md5(coalesce(string_agg(md5(t::text), '' order by ${sql.raw(order)}), '')) as h from ${sql.raw(rel)} t`.execute(db);
  return { rows: Number(r.rows[0]!.n), md5: r.rows[0]!.h };
}

/**
 * Moves the live `tables` into `retired` and the shadow copies into their
 * place, inside the caller's transaction: readers see either the old set or
 * the new one, never a mix. Each ALTER takes an exclusive lock on its table,
 * so queries in flight finish first and new ones wait the few milliseconds
 * the swap takes.
 */
export async function swapIntoPublic(trx: Transaction<Database>, shadow: string, retired: string, tables: readonly string[]): Promise<void> {
  await sql.raw(`create schema ${quoteIdent(retired)}`).execute(trx);
  for (const t of tables) await sql.raw(`alter table public.${quoteIdent(t)} set schema ${quoteIdent(retired)}`).execute(trx);
  for (const t of tables) await sql.raw(`alter table ${quoteIdent(shadow)}.${quoteIdent(t)} set schema public`).execute(trx);
}

export async function dropSchema(db: Db, schema: string): Promise<void> {
  await sql.raw(`drop schema if exists ${quoteIdent(schema)} cascade`).execute(db);
}

/** Shadow and retired schemas left by rebuilds (a crashed rebuild leaves its shadow behind). */
export async function leftoverSchemas(db: Db): Promise<string[]> {
  const r = await sql<{ name: string }>`select nspname as name from pg_namespace where nspname ~ '^(shadow|retired)_[0-9]+$' order by nspname`.execute(db);
  return r.rows.map((x) => x.name);
}
