import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../services/observability/logger.js';
import { createDb } from '../services/read-store/connect.js';
import { PREPARED } from '../services/read-store/prepared.js';
import { createDatabase, uniqueNamespace } from './support/platform.js';

/**
 * Statements marked PREPARED (services/read-store/prepared.ts) are prepared
 * once per connection, and one prepared text still reads the tables of
 * whichever schema the transaction's search_path names (the live read model
 * or a rebuild's shadow copy), also after a table is replaced.
 */
const db = createDb(await createDatabase(uniqueNamespace('prep')), createLogger({ level: 'warn', write: () => undefined }), { max: 1 });

beforeAll(async () => {
  await sql`create schema a; create schema b; create table a.t (v text); create table b.t (v text);
    insert into a.t values ('from a'); insert into b.t values ('from b')`.execute(db);
});

afterAll(async () => {
  await db.destroy();
});

const readIn = (schema: string) =>
  db.transaction().execute(async (trx) => {
    await sql`select set_config('search_path', ${schema}, true)`.execute(trx);
    const { rows } = await sql<{ v: string }>`${PREPARED}select v from t where v like ${'from%'}`.execute(trx);
    return rows.map((r) => r.v);
  });

describe('prepared statements', () => {
  it('prepares a marked statement once on the connection, and leaves others unnamed', async () => {
    await sql`${PREPARED}select ${1}::int as one`.execute(db);
    await sql`${PREPARED}select ${2}::int as one`.execute(db);
    await sql`select ${3}::int as unmarked`.execute(db);
    const { rows } = await sql<{ statement: string }>`select statement from pg_prepared_statements`.execute(db);
    expect(rows.map((r) => r.statement)).toEqual(['/* prepared */ select $1::int as one']);
  });

  it('resolves its tables by the search_path of each execution, and again after a table is replaced', async () => {
    expect(await readIn('a')).toEqual(['from a']);
    expect(await readIn('b')).toEqual(['from b']);
    expect(await readIn('a')).toEqual(['from a']);
    await sql`drop table a.t; create table a.t (v text); insert into a.t values ('from a, again')`.execute(db);
    expect(await readIn('a')).toEqual(['from a, again']);
    expect(await readIn('b')).toEqual(['from b']);
  });
});
