import type { ClickHouseClient } from '@clickhouse/client';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MessagesReport, ParleyEvent } from '../contracts/index.js';
import { clickhouseMigrations } from '../migrations/clickhouse/index.js';
import { readStoredEvent, toEventRow } from '../services/analytics/rows.js';
import { batchToken, eventRowLine, insertEvents, readIntent, writeIntent } from '../services/analytics/sink.js';
import { parseReportQuery, runReport } from '../services/analytics-sql/reports.js';
import { runReadOnlySql } from '../services/analytics-sql/sql.js';
import { createAnalyticsClient, createReadOnlyAnalyticsClient } from '../services/analytics-store/clickhouse.js';
import { migrateClickHouse } from '../services/analytics-store/clickhouse-migrate.js';
import { loadConfig } from '../services/runtime/config.js';
import { createLogger } from '../services/observability/logger.js';
import { AnalyticsTables } from './support/analytics.js';
import { created, sent } from './support/events.js';

/**
 * The analytics storage path (migrations, idempotent batch inserts, the
 * checkpoint, a report, read-only SQL) on a ClickHouse server over HTTP, the
 * CLICKHOUSE_URL mode. Opt-in: set CLICKHOUSE_TEST_URL (and
 * CLICKHOUSE_TEST_USER / CLICKHOUSE_TEST_PASSWORD) to a server of version 24.7
 * or newer on which the test may create and drop a database. None can be
 * installed on the development machines (docs/analytics.md, "Testing against
 * a ClickHouse server"), so without it the same checks run on embedded chDB
 * only, which at least keeps the test itself known to work.
 */
const SERVER = process.env.CLICKHOUSE_TEST_URL;
const targets = [{ name: 'embedded chDB', url: undefined }, ...(SERVER ? [{ name: `the server at ${SERVER}`, url: SERVER }] : [])];
const DAY = 86_400_000;
const log = createLogger({ level: 'warn' });
const encoder = new TextEncoder();

/** Fails early, and says why, on a server older than the deduplication this design relies on. */
async function expectSupportedServer(client: ClickHouseClient): Promise<void> {
  const [row] = await (await client.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' })).json<{ v: string }>();
  const [major = 0, minor = 0] = row!.v.split('.').map(Number);
  expect(major * 100 + minor, `ClickHouse ${row!.v} at CLICKHOUSE_TEST_URL: analytics needs 24.7 or newer`).toBeGreaterThanOrEqual(2407);
}

describe.each(targets)('analytics storage on $name', ({ url }) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-analytics-url-'));
  const config = loadConfig({
    PARLEY_DATA_DIR: dataDir,
    CLICKHOUSE_DATABASE: `parley_t${randomBytes(4).toString('hex')}`,
    ...(url ? { CLICKHOUSE_URL: url, CLICKHOUSE_USER: process.env.CLICKHOUSE_TEST_USER, CLICKHOUSE_PASSWORD: process.env.CLICKHOUSE_TEST_PASSWORD } : {}),
  });
  const db = config.clickhouse.database;
  const key = { consumer: 'url-test', shard: 0, epoch: String(Date.now()) };
  let client: ClickHouseClient;
  let readOnly: ClickHouseClient;
  let t: AnalyticsTables;
  let seq = 0;

  /** Stored events as the projector turns them into rows, numbered on from the last batch. */
  const batch = (events: ParleyEvent[]) => {
    const lines = events.map((e) => {
      const subject = `parley.ev.conv.${(e.data as { conversationId: string }).conversationId}`;
      return eventRowLine(toEventRow({ ...key, seq: ++seq, subject }, readStoredEvent(encoder.encode(JSON.stringify(e)))));
    });
    const [first, last] = [seq - events.length + 1, seq];
    return { lines, intent: { first, last, token: batchToken(key, first, last) } };
  };

  beforeAll(async () => {
    client = createAnalyticsClient(config);
    if (url) await expectSupportedServer(client);
    await migrateClickHouse(client, db, log);
    readOnly = await createReadOnlyAnalyticsClient(config);
    t = new AnalyticsTables(client, db);
  });

  afterAll(async () => {
    if (url) await client?.command({ query: `DROP DATABASE IF EXISTS ${db}` });
    await readOnly?.close();
    await client?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('applies every migration once; applying them again changes nothing', async () => {
    await migrateClickHouse(client, db, log);
    expect(await t.q('SELECT name FROM {db}.schema_migrations ORDER BY name')).toEqual(clickhouseMigrations.map((m) => ({ name: m.name })));
  });

  it('counts a batch once however often it is sent, and a batch that failed halfway once after its retry', async () => {
    const now = Date.now();
    const [g1, bad] = ['g_url1', 'g_urlbad'];
    const first = batch([
      created(g1, ['ana', 'ben'], now - 2 * DAY),
      ...Array.from({ length: 20 }, (_, i) => sent(g1, i % 2 ? 'ana' : 'ben', `第${i}条 👋`, now - 2 * DAY + i * 61_000)),
    ]);
    await writeIntent(client, db, key, first.intent);
    await insertEvents(client, db, first.lines, first.intent.token);
    await insertEvents(client, db, first.lines, first.intent.token);
    expect(await t.clickhouseCounts()).toEqual({ 'conversation.created': 1, 'message.sent': 20 });

    // A view that fails every insert holding `bad`: the raw part lands, some views may, this one never.
    await t.command('CREATE TABLE {db}.fault_sink (x UInt8) ENGINE = Null');
    await t.command(`CREATE MATERIALIZED VIEW {db}.fault_mv TO {db}.fault_sink AS SELECT throwIf(conversation_id = '${bad}') AS x FROM {db}.events`);
    const second = batch([created(bad, ['cy'], now - DAY), sent(bad, 'cy', 'poisoned', now - DAY + 1000), sent(g1, 'ana', 'later', now - 1000)]);
    await writeIntent(client, db, key, second.intent);
    await expect(insertEvents(client, db, second.lines, second.intent.token)).rejects.toThrow(/throwIf|non-zero/i);
    expect(await readIntent(client, db, key)).toEqual(second.intent);
    await t.command('DROP VIEW {db}.fault_mv');
    await t.command('DROP TABLE {db}.fault_sink');
    await insertEvents(client, db, second.lines, second.intent.token);
    await insertEvents(client, db, second.lines, second.intent.token);

    expect(await t.clickhouseCounts()).toEqual({ 'conversation.created': 2, 'message.sent': 22 });
    await t.expectRollupsMatchRaw();
  });

  it('answers a standard report from the rollups, and read-only SQL that cannot write', async () => {
    const report = (await runReport(
      { client, database: db },
      'messages',
      parseReportQuery('messages', {
        from: new Date(Date.now() - 3 * DAY).toISOString(),
        to: new Date(Date.now() + 60_000).toISOString(),
        granularity: 'day',
      }),
    )) as MessagesReport;
    expect(report.rows.reduce((n, r) => n + r.messages, 0)).toBe(22);

    const answer = await runReadOnlySql(readOnly, { query: `SELECT type, count() AS n FROM ${db}.events GROUP BY type ORDER BY type`, maxRows: 10 });
    expect(answer.rows.map(([type, n]) => [type, Number(n)])).toEqual([
      ['conversation.created', 2],
      ['message.sent', 22],
    ]);
    // Past the static check, the session itself refuses writes.
    await expect(readOnly.command({ query: `CREATE TABLE ${db}.sneaky (x UInt8) ENGINE = Memory` })).rejects.toThrow(/readonly/i);
  });
});
