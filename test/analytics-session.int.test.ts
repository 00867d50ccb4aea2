import type { ClickHouseClient } from '@clickhouse/client';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runReadOnlySql } from '../services/analytics-sql/sql.js';
import { createAnalyticsClient, createReadOnlyAnalyticsClient } from '../services/analytics-store/clickhouse.js';
import { migrateClickHouse } from '../services/analytics-store/clickhouse-migrate.js';
import { loadConfig } from '../services/runtime/config.js';
import { isAppError } from '../services/runtime/errors.js';
import { createLogger } from '../services/observability/logger.js';

/**
 * On embedded chDB, a query that fails after it started writing its answer
 * (the header, or rows of a first block) left that output in the session, and
 * the next query of the session, anyone's, received it in front of its own:
 * after one analyst's query hit a limit, the next one (or the guard's own
 * parse of it) failed with a 500, and could have returned rows that were not
 * its own. Every statement that fails this way, followed by every kind of
 * call the platform makes, must get exactly its own answer.
 */
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-chdb-session-'));
const config = loadConfig({ PARLEY_DATA_DIR: dataDir, CLICKHOUSE_DATABASE: `parley_s${randomBytes(4).toString('hex')}` });
const db = config.clickhouse.database;
let client: ClickHouseClient;
let readOnly: ClickHouseClient;

beforeAll(async () => {
  client = createAnalyticsClient(config);
  await migrateClickHouse(client, db, createLogger({ level: 'warn' }));
  readOnly = await createReadOnlyAnalyticsClient(config);
});

afterAll(async () => {
  await readOnly?.close();
  await client?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/** Analyst statements that pass the guard and then fail in the engine, after output has started. */
const FAILING = [
  'SELECT intDiv(1, number - 5) AS x FROM numbers(10)', // division by zero at row 5 of the first block
  "SELECT number, toInt32(if(number < 3, '1', 'abc')) AS n FROM numbers(10)", // 'abc' is not a number
  "SELECT CAST(toString(number) AS Enum8('a' = 1)) FROM numbers(3)",
];

/** What the next caller does: a guarded analyst query, a report-style query, a bare exec. */
const NEXT: { name: string; run: () => Promise<unknown>; expected: unknown }[] = [
  { name: 'an analyst query', run: async () => (await runReadOnlySql(readOnly, { query: 'SELECT 41 + 1 AS answer', maxRows: 10 })).rows, expected: [[42]] },
  { name: 'a JSONEachRow query', run: async () => (await readOnly.query({ query: 'SELECT 7 AS n', format: 'JSONEachRow' })).json(), expected: [{ n: 7 }] },
  { name: 'a text query', run: async () => (await (await readOnly.query({ query: 'SELECT 3 AS n', format: 'TabSeparated' })).text()).trim(), expected: '3' },
];

describe('a failed analytics query on embedded chDB', () => {
  for (const failing of FAILING) {
    for (const next of NEXT) {
      it(`leaves nothing behind for the next caller: ${next.name} after "${failing}"`, async () => {
        const failure = await runReadOnlySql(readOnly, { query: failing, maxRows: 100 }).then(
          () => null,
          (err: unknown) => err,
        );
        expect(isAppError(failure) && failure.code, String(failure)).toBe('sql_failed');
        expect(await next.run()).toEqual(next.expected);
      });
    }
  }

  it('leaves nothing behind on the ingest client either', async () => {
    await expect(client.query({ query: 'SELECT intDiv(1, number - 5) AS x FROM numbers(10)', format: 'JSONCompact' })).rejects.toThrow(/division by zero/i);
    expect(await (await client.query({ query: 'SELECT 5 AS n', format: 'JSONEachRow' })).json()).toEqual([{ n: 5 }]);
  });
});
