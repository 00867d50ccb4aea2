import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REFUSED_SQL, startCanary } from './support/analytics-sql-cases.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';
import { waitUntil } from './support/events.js';
import { createLogger } from '../services/observability/logger.js';
import { startAnalyticsHttp } from '../services/analytics/http/server.js';

/**
 * The ClickHouse-compatible endpoint (services/analytics/http/) against a
 * stock @clickhouse/client and curl, on a real platform with embedded chDB:
 * formats, parameters, a large streamed result, errors in ClickHouse's own
 * form, and the same refusals as POST /v1/analytics/sql.
 */
const PASSWORD = `analyst-${randomBytes(8).toString('hex')}`;
const run = promisify(execFile);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-ch-http-'));
const SECRET = `canary-${randomBytes(8).toString('hex')}`;
const secretFile = path.join(tmp, 'secret.txt');
const outFile = path.join(tmp, 'outfile.txt');
let p: TestPlatform;
let port = 0;
let base = '';
let client: ClickHouseClient;
let canary: Awaited<ReturnType<typeof startCanary>> | undefined;
let canaryPort = 0;

// The client logs every failed request; the failures here are asserted instead.
const quiet = { log: { level: ClickHouseLogLevel.OFF } };
const connect = (password = PASSWORD) => createClient({ url: base, username: 'analyst', password, database: p.config.clickhouse.database, ...quiet });
/** curl, asynchronously: the endpoint answers from this very process. */
const curl = async (...args: string[]) => (await run('curl', ['-sS', '--max-time', '20', ...args], { encoding: 'utf8' })).stdout;
const basic = `analyst:${PASSWORD}`;

beforeAll(async () => {
  canary = await startCanary(secretFile, SECRET);
  canaryPort = canary.port;
  p = await startTestPlatform({ env: { ANALYTICS_HTTP_PORT: '0', ANALYTICS_HTTP_PASSWORD: PASSWORD } });
  await waitUntil(() => p.platform.analytics?.http !== undefined, 10_000);
  port = p.platform.analytics!.http!.port;
  base = `http://127.0.0.1:${port}`;
  client = connect();
});

afterAll(async () => {
  await client?.close();
  await p?.stop();
  await canary?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('@clickhouse/client against the endpoint', () => {
  it('pings and queries in the usual formats', async () => {
    expect((await client.ping()).success).toBe(true);
    const q = 'SELECT number AS n, toString(number * 2) AS s FROM numbers(3)';
    const json = await (await client.query({ query: q, format: 'JSON' })).json<{ n: string; s: string }>();
    expect(json.meta?.map((m) => m.name)).toEqual(['n', 's']);
    expect(json.data.map((r) => [Number(r.n), r.s])).toEqual([
      [0, '0'],
      [1, '2'],
      [2, '4'],
    ]);
    // chDB prints 64-bit integers unquoted in JSON (output_format_json_quote_64bit_integers = 0).
    expect(await (await client.query({ query: q, format: 'JSONEachRow' })).json()).toEqual([
      { n: 0, s: '0' },
      { n: 1, s: '2' },
      { n: 2, s: '4' },
    ]);
    expect(await (await client.query({ query: q, format: 'JSONCompactEachRow' })).json()).toEqual([
      [0, '0'],
      [1, '2'],
      [2, '4'],
    ]);
    expect(await (await client.query({ query: q, format: 'CSV' })).text()).toBe('0,"0"\n1,"2"\n2,"4"\n');
    expect(await (await client.query({ query: q, format: 'TabSeparated' })).text()).toBe('0\t0\n1\t2\n2\t4\n');
    expect(await (await client.query({ query: q, format: 'TabSeparatedWithNames' })).text()).toBe('n\ts\n0\t0\n1\t2\n2\t4\n');
    // The analytics tables, unqualified (the `database` the client sends is the analytics one).
    expect(await (await client.query({ query: 'SELECT count() >= 0 AS ok FROM events', format: 'JSONEachRow' })).json()).toEqual([{ ok: 1 }]);
  });

  it('binds query parameters, and checks them substituted', async () => {
    const s = "it's a\ttab, a \\ backslash,\na newline and ünïcødé 🎉";
    const rs = await client.query({
      query: 'SELECT {n:UInt32} + 1 AS m, {s:String} AS s, {a:Array(UInt8)} AS a',
      format: 'JSONEachRow',
      query_params: { n: 41, s, a: [1, 2] },
    });
    expect(await rs.json()).toEqual([{ m: 42, s, a: [1, 2] }]);
    // An Identifier parameter is a table name like a written one.
    await expect(client.query({ query: 'SELECT * FROM {t:Identifier}', format: 'JSONEachRow', query_params: { t: 'system.users' } })).rejects.toMatchObject({
      code: '497',
      type: 'ACCESS_DENIED',
    });
    const nullable = await client.query({
      query: 'SELECT {v:Nullable(String)} AS v, {w:String} AS w',
      format: 'JSONEachRow',
      query_params: { v: null, w: '\\N' },
    });
    expect(await nullable.json()).toEqual([{ v: null, w: '\\N' }]);
    expect(
      await (await client.query({ query: 'SELECT count() AS c FROM {t:Identifier}', format: 'JSONEachRow', query_params: { t: 'events' } })).json(),
    ).toHaveLength(1);
  });

  it('streams a result of 100,000 rows', async () => {
    const rs = await client.query({ query: 'SELECT number AS n, toString(number) AS s FROM numbers(100000)', format: 'JSONEachRow' });
    let rows = 0;
    let sum = 0;
    for await (const batch of rs.stream<{ n: string; s: string }>()) {
      for (const row of batch) {
        rows++;
        sum += Number(row.json().n);
      }
    }
    expect(rows).toBe(100_000);
    expect(sum).toBe((99_999 * 100_000) / 2);
  });

  it('answers errors with ClickHouse codes', async () => {
    await expect(client.query({ query: 'SELEC 1', format: 'JSON' })).rejects.toMatchObject({ code: '62', type: 'SYNTAX_ERROR' });
    await expect(client.query({ query: 'SELECT * FROM no_such_table', format: 'JSON' })).rejects.toMatchObject({ code: '60', type: 'UNKNOWN_TABLE' });
    await expect(client.query({ query: "SELECT * FROM file('/etc/passwd')", format: 'JSON' })).rejects.toMatchObject({ code: '497', type: 'ACCESS_DENIED' });
    // Refused by the guard (ACCESS_DENIED) or already by its parse (an INSERT's inline data: SYNTAX_ERROR).
    await expect(client.command({ query: `INSERT INTO ${p.config.clickhouse.database}.events (seq) VALUES (1)` })).rejects.toMatchObject({
      code: expect.stringMatching(/^(62|497)$/),
    });
    await expect(client.command({ query: 'CREATE TABLE x (a UInt8) ENGINE = Memory' })).rejects.toMatchObject({ code: '497' });
    const wrong = connect('not-the-password-at-all');
    try {
      await expect(wrong.query({ query: 'SELECT 1', format: 'JSON' })).rejects.toMatchObject({ code: '516', type: 'AUTHENTICATION_FAILED' });
    } finally {
      await wrong.close();
    }
    const otherDb = createClient({ url: base, username: 'analyst', password: PASSWORD, database: 'system', ...quiet });
    try {
      await expect(otherDb.query({ query: 'SELECT 1', format: 'JSON' })).rejects.toMatchObject({ code: '497' });
    } finally {
      await otherDb.close();
    }
    // The session is fine after all that.
    expect(await (await client.query({ query: 'SELECT 7 AS x', format: 'JSONEachRow' })).json()).toEqual([{ x: 7 }]);
  });

  it('only tightens limits: max_result_rows cuts, readonly=0 is refused', async () => {
    const rs = await client.query({ query: 'SELECT number FROM numbers(1000)', format: 'JSONEachRow', clickhouse_settings: { max_result_rows: '10' } });
    expect(await rs.json()).toHaveLength(10);
    await expect(client.query({ query: 'SELECT 1', format: 'JSON', clickhouse_settings: { readonly: '0' } })).rejects.toMatchObject({ code: '164' });
    const big = await client.query({
      query: 'SELECT number FROM numbers(1000)',
      format: 'JSONEachRow',
      clickhouse_settings: { max_result_rows: '1000000', result_overflow_mode: 'throw' },
    });
    expect(await big.json()).toHaveLength(1000);
  });
});

describe('curl against the endpoint', () => {
  it('pings, takes the query in the URL or the body, FORMAT clauses and basic auth, and sends the headers', async () => {
    expect(await curl(`${base}/ping`)).toBe('Ok.\n');
    expect(await curl('-u', basic, `${base}/?query=SELECT%201`)).toBe('1\n');
    expect(await curl('-u', basic, '--data-binary', 'SELECT 2 + 2', `${base}/`)).toBe('4\n');
    expect(await curl('-u', basic, '--data-binary', 'SELECT number AS n FROM numbers(2) FORMAT JSONEachRow', `${base}/`)).toBe('{"n":0}\n{"n":1}\n');
    expect(await curl('-u', basic, '--data-binary', 'FROM numbers(2) FORMAT CSV', `${base}/?query=SELECT%20number`)).toBe('0\n1\n');
    expect(
      await curl('-H', 'X-ClickHouse-User: analyst', '-H', `X-ClickHouse-Key: ${PASSWORD}`, `${base}/?query=SELECT%203&default_format=JSONCompact`),
    ).toMatch(/"data":\s*\[\s*\[3\]\s*\]/);
    expect(await curl(`${base}/?user=analyst&password=${PASSWORD}&query=SELECT%20%7Bx%3AUInt8%7D&param_x=9`)).toBe('9\n');
    const head = await curl('-u', basic, '-D', '-', '-o', '/dev/null', `${base}/?query=SELECT%201&query_id=q-123`);
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    expect(head).toMatch(/x-clickhouse-query-id: q-123/i);
    expect(head).toMatch(/x-clickhouse-format: TabSeparated/i);
    expect(head).toMatch(/x-clickhouse-timezone: \S+/i);
    expect(head).toMatch(/x-clickhouse-server-display-name: \S+/i);
    // An id that cannot go into a header is replaced, not echoed.
    expect(await curl('-u', basic, '-D', '-', '-o', '/dev/null', `${base}/?query=SELECT%201&query_id=a%0D%0AX-Injected:%201`)).not.toMatch(/x-injected/i);
    const summary = /x-clickhouse-summary: (.*)\r/i.exec(head)?.[1];
    expect(JSON.parse(summary!)).toHaveProperty('read_rows');
  });

  it('answers RowBinary as the engine encodes it (little-endian values, LEB128-prefixed strings)', async () => {
    const bytes = async (sql: string, query = '') =>
      (await run('curl', ['-sS', '--max-time', '20', '-u', basic, '--data-binary', sql, `${base}/${query}`], { encoding: 'buffer' })).stdout;
    const q = "SELECT toUInt8(7) AS a, 'hi' AS s, toUInt32(258) AS n";
    const row = [0x07, 0x02, 0x68, 0x69, 0x02, 0x01, 0x00, 0x00];
    expect([...(await bytes(`${q} FORMAT RowBinary`))]).toEqual(row);
    expect([...(await bytes(q, '?default_format=RowBinary'))]).toEqual(row);
    const str = (s: string) => [s.length, ...Buffer.from(s)];
    expect([...(await bytes(`${q} FORMAT RowBinaryWithNamesAndTypes`))]).toEqual([
      3,
      ...['a', 's', 'n'].flatMap(str),
      ...['UInt8', 'String', 'UInt32'].flatMap(str),
      ...row,
    ]);
    const head = await curl('-u', basic, '-D', '-', '-o', '/dev/null', '--data-binary', `${q} FORMAT RowBinary`, `${base}/`);
    expect(head).toMatch(/content-type: application\/octet-stream/i);
    expect(head).toMatch(/x-clickhouse-format: RowBinary/i);
  });

  it('answers failures in ClickHouse form', async () => {
    const denied = await curl('-u', 'analyst:wrong-password-000000', '-D', '-', `${base}/?query=SELECT%201`);
    expect(denied).toMatch(/^HTTP\/1\.1 401/);
    expect(denied).toMatch(/x-clickhouse-exception-code: 516/i);
    expect(denied).toMatch(/Code: 516\. DB::Exception: .*\(AUTHENTICATION_FAILED\) \(version [^)]+\)\n$/);
    const noAuth = await curl('-D', '-', `${base}/?query=SELECT%201`);
    expect(noAuth).toMatch(/x-clickhouse-exception-code: 516/i);
    const syntax = await curl('-u', basic, '-D', '-', '--data-binary', 'SELEC 1', `${base}/`);
    expect(syntax).toMatch(/^HTTP\/1\.1 400/);
    expect(syntax).toMatch(/Code: 62\. DB::Exception: .*\(SYNTAX_ERROR\)/);
    const format = await curl('-u', basic, '-D', '-', '--data-binary', 'SELECT 1 FORMAT Template', `${base}/`);
    expect(format).toMatch(/x-clickhouse-exception-code: 497/i);
    expect(format).toMatch(/FORMAT Template is not offered/);
  });
});

describe('docs/analytics.md: an analyst user on a ClickHouse server', () => {
  // No server can be installed here (docs/analytics.md, "Testing against a ClickHouse server"): the engine's own parser at least keeps the documented statements valid.
  it("has SQL (profile, user, quota, grant) that ClickHouse's parser accepts", async () => {
    const doc = fs.readFileSync('docs/analytics.md', 'utf8');
    const block = /### Analysts on a ClickHouse server[\s\S]*?```sql\n([\s\S]*?)```/.exec(doc)?.[1] ?? '';
    const statements = block
      .replace(/--.*$/gm, '')
      .split(';')
      .map((s) => s.trim())
      .filter(Boolean);
    const kinds: string[] = [];
    for (const sql of statements) {
      const ast = await (await p.platform.runtime.clickhouseReadOnly.query({ query: `EXPLAIN AST ${sql}`, format: 'TabSeparatedRaw' })).text();
      kinds.push(ast.split(/[\s(]/)[0]!);
    }
    expect(kinds).toEqual(['CreateSettingsProfileQuery', 'CreateUserQuery', 'CreateQuotaQuery', 'GrantQuery']);
  });
});

describe('the development default', () => {
  it('accepts user analyst with an empty password, and nothing else', async () => {
    // What http/plan.ts starts with dev tokens on loopback and no password (its table test covers when).
    const dev = await startAnalyticsHttp({
      host: '127.0.0.1',
      port: 0,
      credentials: { user: 'analyst', password: '' },
      database: p.config.clickhouse.database,
      client: p.platform.runtime.clickhouseReadOnly,
      log: createLogger({ level: 'silent' }),
    });
    try {
      const url = `http://127.0.0.1:${dev.port}`;
      expect(await curl('-u', 'analyst:', `${url}/?query=SELECT%2042`)).toBe('42\n');
      expect(await curl(`${url}/?user=analyst&query=SELECT%2043`)).toBe('43\n');
      for (const auth of [[], ['-u', 'analyst:x'], ['-u', 'default:'], ['-H', 'X-ClickHouse-User: root']]) {
        expect(await curl(...auth, '-D', '-', `${url}/?query=SELECT%201`)).toMatch(/x-clickhouse-exception-code: 516/i);
      }
    } finally {
      await dev.stop();
    }
  });
});

describe('the same refusals as POST /v1/analytics/sql', () => {
  const fill = (sql: string) =>
    sql
      .replaceAll('{db}', p.config.clickhouse.database)
      .replaceAll('{secret}', secretFile)
      .replaceAll('{out}', outFile)
      .replaceAll('{port}', String(canaryPort));
  // A trailing FORMAT clause is this endpoint's way to pick the output format, so those two run here.
  const cases = REFUSED_SQL.filter((sql) => !/^select 1 format \w+$/i.test(sql));

  it(`refuses ${cases.length} hostile or out-of-scope spellings, and none of them ran`, async () => {
    expect(cases.length).toBeGreaterThanOrEqual(60);
    for (const template of cases) {
      const sql = fill(template);
      const res = await fetch(`${base}/`, { method: 'POST', body: sql, headers: { Authorization: `Basic ${Buffer.from(basic).toString('base64')}` } });
      const body = await res.text();
      expect(res.status, sql).toBeGreaterThanOrEqual(400);
      expect(res.status, sql).toBeLessThan(500);
      expect(res.headers.get('x-clickhouse-exception-code'), sql).toMatch(/^\d+$/);
      expect(body, sql).toMatch(/^Code: \d+\. DB::Exception: /);
      expect(body, sql).not.toContain(SECRET);
    }
    expect(canary!.hits()).toBe(0);
    expect(fs.existsSync(outFile)).toBe(false);
  });
});
