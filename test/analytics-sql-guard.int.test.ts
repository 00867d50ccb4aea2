import type { ClickHouseClient } from '@clickhouse/client';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqlResponse } from '../contracts/index.js';
import { ALLOWED_FUNCTION_NAMES, isAllowedFunction, PARSER_FUNCTION_NAMES, vetAnalyticsSql } from '../services/analytics-sql/sql-guard/index.js';
import { runReadOnlySql } from '../services/analytics-sql/sql.js';
import { createAnalyticsClient, createReadOnlyAnalyticsClient } from '../services/analytics-store/clickhouse.js';
import { migrateClickHouse } from '../services/analytics-store/clickhouse-migrate.js';
import { loadConfig } from '../services/runtime/config.js';
import { isAppError } from '../services/runtime/errors.js';
import { createLogger } from '../services/observability/logger.js';
import { REFUSED_SQL as REFUSED, startCanary } from './support/analytics-sql-cases.js';

/**
 * The analytics SQL guard against the real engine (embedded chDB): spellings
 * that must be refused with `sql_rejected` (and must not have run: a canary
 * file is never read, a canary HTTP server never called, no outfile
 * written), spellings that must run, and the function allow-list checked
 * against the engine's own catalog.
 */
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-sql-guard-'));
const config = loadConfig({ PARLEY_DATA_DIR: dataDir, CLICKHOUSE_DATABASE: `parley_g${randomBytes(4).toString('hex')}` });
const db = config.clickhouse.database;
const SECRET = `canary-${randomBytes(8).toString('hex')}`;
const secretFile = path.join(dataDir, 'secret.txt');
const outFile = path.join(dataDir, 'outfile.txt');
let client: ClickHouseClient;
let readOnly: ClickHouseClient;
let canary: Awaited<ReturnType<typeof startCanary>> | undefined;
let port = 0;

const fill = (sql: string) => sql.replaceAll('{db}', db).replaceAll('{secret}', secretFile).replaceAll('{out}', outFile).replaceAll('{port}', String(port));

/** Each must run and answer rows. */
const ALLOWED: string[] = [
  'SELECT 1',
  "WITH 2 AS two SELECT count() * two AS n, uniqExact(conversation_id) AS c FROM {db}.events WHERE type = 'message.sent';",
  'select count() from events',
  'SELECT type, count() AS n FROM {db}.events GROUP BY type ORDER BY n DESC LIMIT 5',
  "SELECT hour, sum(messages) AS messages, sum(text_bytes) AS bytes FROM {db}.messages_by_hour WHERE conversation_id = 'g_123' AND hour >= now() - INTERVAL 1 DAY GROUP BY hour ORDER BY hour",
  'SELECT toMonday(day) AS week, uniqExact(user_id) AS wau FROM {db}.active_users_daily GROUP BY week ORDER BY week',
  'SELECT toStartOfHour(minute) AS hour, sum(deliveries) AS n, quantilesTimingMerge(0.5, 0.9, 0.99, 0.999)(latency) AS p, max(max_ms) AS max_ms FROM {db}.delivery_latency_by_minute GROUP BY hour ORDER BY hour',
  "SELECT quantiles(0.5, 0.99)(dateDiff('millisecond', m.at, d.at)) FROM {db}.events AS d INNER JOIN {db}.events AS m ON m.seq = d.ref_seq AND m.epoch = d.epoch WHERE d.type = 'delivered.marked' AND m.type = 'message.sent'",
  `WITH cohorts AS (SELECT user_id, toMonday(min(first_at)) AS cohort FROM {db}.user_first_seen GROUP BY user_id)
   SELECT c.cohort, intDiv(dateDiff('day', c.cohort, toMonday(a.day)), 7) AS week_offset, uniqExact(a.user_id) AS active, any(s.size) AS cohort_size, active / cohort_size AS rate
   FROM cohorts AS c INNER JOIN {db}.active_users_daily AS a ON a.user_id = c.user_id
   INNER JOIN (SELECT cohort, count() AS size FROM cohorts GROUP BY cohort) AS s ON s.cohort = c.cohort
   WHERE a.day >= c.cohort GROUP BY c.cohort, week_offset ORDER BY c.cohort, week_offset`,
  "SELECT sumIf(text_bytes, type = 'message.sent'), uniqExactIf(actor, type = 'message.sent'), countIf(attachment_count > 0), avgOrNull(text_chars) FROM {db}.events",
  'SELECT arrayMap(x -> x * 2, [1, 2, 3]) AS doubled, arrayFilter(x -> x > 1, [1, 2, 3]) AS big',
  'SELECT number FROM numbers(5)',
  'SELECT toStartOfInterval(at, INTERVAL 15 MINUTE) AS b, count() FROM {db}.events GROUP BY b ORDER BY b',
  'SELECT seq, row_number() OVER (PARTITION BY conversation_id ORDER BY seq) AS n, lagInFrame(seq) OVER (ORDER BY seq) AS prev FROM {db}.events',
  "SELECT count() FROM {db}.events WHERE actor IN (SELECT actor FROM {db}.events WHERE type = 'message.sent')",
  "SELECT count() FROM {db}.events WHERE type IN ('message.sent', 'message.edited') AND actor NOT IN ('x')",
  'SELECT 1 AS x UNION ALL SELECT 2 UNION DISTINCT SELECT 3',
  'SELECT 1 INTERSECT SELECT 1',
  'SELECT countDistinct(actor), untuple((1, 2)), exists(SELECT 1) FROM {db}.events',
  'SELECT sumMap([1], [2]), uniqArray([1, 2]), countIfOrNull(1) FROM {db}.events',
  'WITH c AS (SELECT conversation_id, count() AS n FROM {db}.events GROUP BY conversation_id) SELECT max(n) FROM c',
  'SELECT 1 AS file',
  "SELECT file FROM (SELECT 'x' AS file)",
  "SELECT 'file(/etc/passwd)' AS s, 'SELECT 1; DROP TABLE x' AS t",
  "SELECT 1 /* file('/etc/passwd') */ -- ; SETTINGS readonly = 0",
  "SELECT format('{} {}', 'a', 'b'), concat('a', 'b'), 'a' || 'b', upper('é')",
  "SELECT CASE WHEN 1 THEN 'a' ELSE 'b' END, CAST(1 AS String), 1::UInt8, 1 BETWEEN 0 AND 2, 'ab' LIKE 'a%', now() - INTERVAL 1 DAY > today() - 2",
  'SELECT * EXCEPT (ingested_at) FROM {db}.events LIMIT 1',
  'SELECT * FROM {db}.events ORDER BY seq DESC LIMIT 10 BY conversation_id',
  'SELECT count() FROM {db}.events FINAL',
  "SELECT toTypeName(now()), toDate('2026-01-01'), parseDateTimeBestEffortOrNull('2026-01-01 10:00:00')",
  'SHOW TABLES',
  'SHOW TABLES FROM {db}',
  "SHOW TABLES LIKE 'messages%'",
  'DESCRIBE TABLE {db}.events',
  'DESC events',
  'EXPLAIN SELECT count() FROM {db}.events',
  'EXPLAIN AST SELECT 1',
  'EXPLAIN SYNTAX SELECT count() FROM events',
];

async function refusal(sql: string): Promise<string> {
  try {
    await runReadOnlySql(readOnly, { query: sql, maxRows: 100 }, db);
  } catch (err) {
    if (isAppError(err, 'sql_rejected')) return err.message;
    throw new Error(`${JSON.stringify(sql)} failed with something else than sql_rejected: ${String(err)}`);
  }
  throw new Error(`${JSON.stringify(sql)} was accepted`);
}

beforeAll(async () => {
  canary = await startCanary(secretFile, SECRET);
  port = canary.port;
  client = createAnalyticsClient(config);
  await migrateClickHouse(client, db, createLogger({ level: 'warn' }));
  await client.command({
    query: `INSERT INTO ${db}.events (shard, epoch, seq, entity_kind, entity_id, type, at, actor, conversation_id, text_chars, text_bytes) VALUES (0, 'e1', 1, 'conv', 'g_1', 'message.sent', now64(3), 'ada', 'g_1', 5, 5), (0, 'e1', 2, 'conv', 'g_1', 'message.sent', now64(3), 'bo', 'g_1', 3, 3)`,
  });
  readOnly = await createReadOnlyAnalyticsClient(config);
});

afterAll(async () => {
  await readOnly?.close();
  await client?.close();
  await canary?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('the analytics SQL guard', () => {
  it(`refuses ${REFUSED.length} hostile or out-of-scope spellings with sql_rejected, and none of them ran`, async () => {
    expect(REFUSED.length).toBeGreaterThanOrEqual(60);
    const messages: string[] = [];
    for (const template of REFUSED) messages.push(await refusal(fill(template)));
    // Nothing was read, called or written, and no answer carries the canary.
    expect(canary!.hits()).toBe(0);
    expect(fs.existsSync(outFile)).toBe(false);
    for (const m of messages) expect(m).not.toContain(SECRET);
    // The engine (the same process) is still there.
    expect((await runReadOnlySql(readOnly, { query: 'SELECT 1 AS one', maxRows: 1 }, db)).rows).toEqual([[1]]);
  });

  it('says why, for the common cases', async () => {
    expect(await refusal(fill("SELECT `file`('{secret}')"))).toMatch(/function file\(\) is not allowed/);
    expect(await refusal(fill("SELECT * FROM url('http://127.0.0.1:{port}/', 'LineAsString')"))).toMatch(/table function url\(\)/);
    expect(await refusal('SELECT * FROM system.settings')).toMatch(/system\.settings is outside the analytics database/);
    expect(await refusal('SELECT 1 SETTINGS max_threads = 1')).toMatch(/SETTINGS/);
    expect(await refusal('SELECT 1 FORMAT CSV')).toMatch(/FORMAT/);
    expect(await refusal(fill("SELECT 1 INTO OUTFILE '{out}'"))).toMatch(/INTO OUTFILE/);
    expect(await refusal('SELECT 1; SELECT 2')).toMatch(/Multi-statements/i);
    expect(await refusal(`DROP TABLE ${db}.events`)).toMatch(/read-only.*not DROP/);
    expect(await refusal('SELECT 1 AS `x y`')).toMatch(/plain word/);
    expect(await refusal('SELECT count() AS "x y" FROM events')).toMatch(/plain word/);
  });

  it(`runs ${ALLOWED.length} ordinary analyst queries`, async () => {
    for (const template of ALLOWED) {
      const sql = fill(template);
      const answer = await runReadOnlySql(readOnly, { query: sql, maxRows: 1000 }, db).catch((err: unknown) => {
        throw new Error(`${JSON.stringify(sql)} was refused: ${String(err)}`);
      });
      expect(SqlResponse.safeParse(answer).success, sql).toBe(true);
      expect(answer.columns.length, sql).toBeGreaterThan(0);
    }
    const aliased = await runReadOnlySql(readOnly, { query: 'SELECT 1 AS file', maxRows: 10 }, db);
    expect([aliased.columns[0]!.name, aliased.rows]).toEqual(['file', [[1]]]);
    const unqualified = await runReadOnlySql(readOnly, { query: 'SELECT count() AS n FROM events', maxRows: 10 }, db);
    expect(Number(unqualified.rows[0]![0])).toBe(2);
    const tables = await runReadOnlySql(readOnly, { query: 'SHOW TABLES', maxRows: 100 }, db);
    expect(tables.rows.flat()).toContain('events');
  });

  it('returns the canonical text it checked, which is what runs', async () => {
    const vetted = await vetAnalyticsSql(readOnly, "select /* c */ `count`() from events -- x\nwhere type = 'a;b'", { database: db });
    expect(vetted).toMatchObject({ query: "SELECT count() FROM events WHERE type = 'a;b'", kind: 'select' });
    expect(vetted.settings).toMatchObject({ max_execution_time: 30, allow_introspection_functions: 0 });
  });

  it('runs in a session the engine itself keeps read-only and limited', async () => {
    const setting = async (name: string) =>
      (await (await readOnly.query({ query: `SELECT getSetting('${name}') AS v`, format: 'JSONEachRow' })).json<{ v: unknown }>())[0]!.v;
    expect(String(await setting('readonly'))).toBe('1');
    expect(String(await setting('allow_ddl'))).toMatch(/^(0|false)$/);
    expect(String(await setting('allow_introspection_functions'))).toMatch(/^(0|false)$/);
    expect(String(await setting('max_execution_time'))).toBe('30');
    // Even without the guard, the session refuses table functions that reach out, and writes.
    for (const q of [
      `SELECT * FROM url('http://127.0.0.1:${port}/', 'LineAsString')`,
      `SELECT * FROM file('${secretFile}', 'LineAsString')`,
      `INSERT INTO ${db}.events (seq) VALUES (9)`,
    ]) {
      await expect(readOnly.query({ query: q, format: 'JSONEachRow' }).then((rs) => rs.text())).rejects.toThrow(/READONLY|readonly/);
    }
    expect(canary!.hits()).toBe(0);
  });
});

describe('the function allow-list against the engine catalog', () => {
  it('admits no function that aliases a refused one, and every listed name exists', async () => {
    const catalog = await (await client.query({ query: 'SELECT name, alias_to FROM system.functions', format: 'JSONEachRow' })).json<{
      name: string;
      alias_to: string;
    }>();
    const names = new Set(catalog.map((f) => f.name.toLowerCase()));
    // Case-insensitive lookups cannot reach a refused function through an admitted spelling.
    const leaks = catalog.filter((f) => isAllowedFunction(f.name) && f.alias_to !== '' && !isAllowedFunction(f.alias_to));
    expect(leaks).toEqual([]);
    // Names the parser rewrites aside, the list holds no typo that might one day name something else.
    const unknown = ALLOWED_FUNCTION_NAMES.filter((n) => !names.has(n.toLowerCase()) && !PARSER_FUNCTION_NAMES.has(n));
    expect(unknown).toEqual([]);
    for (const refused of [
      'file',
      'url',
      'dictGet',
      'joinGet',
      'getSetting',
      'getServerSetting',
      'hostName',
      'currentUser',
      'sleep',
      'arrayReduce',
      'formatRow',
      'aiGenerate',
      'showCertificate',
      'catboostEvaluate',
    ]) {
      expect(isAllowedFunction(refused), refused).toBe(false);
    }
  });
});
