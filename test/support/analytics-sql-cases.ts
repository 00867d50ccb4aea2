import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Analysts' SQL that must be refused wherever it arrives (POST
 * /v1/analytics/sql and the CLI in test/analytics-sql-guard.int.test.ts, the
 * ClickHouse-compatible endpoint in test/analytics-http.e2e.test.ts).
 * Placeholders: {db} the analytics database, {secret} a canary file, {out} a
 * path that must never be written, {port} a canary HTTP server.
 */
/** Each must answer sql_rejected; the comment says what the spelling tries. */
export const REFUSED_SQL: readonly string[] = [
  // the reported ones, and every way to spell the name
  "SELECT `file`('{secret}')",
  "SELECT file/**/('{secret}')",
  "SELECT file('{secret}')",
  'SELECT "file"(\'{secret}\')',
  "SELECT FILE('{secret}')",
  "SELECT FiLe('{secret}')",
  "SELECT file ( '{secret}' )",
  "SELECT\tfile\n(\n'{secret}'\n)",
  "SELECT file -- comment\n('{secret}')",
  "SELECT file # comment\n('{secret}')",
  "SELECT /* a */ file /* b */ ( /* c */ '{secret}' )",
  "select file('/proc/self/environ')",
  "SELECT file('{secret}') FROM {db}.events",
  // unicode look-alikes: Cyrillic і and е, fullwidth letters, quoted and not
  "SELECT f\u0456le('{secret}')",
  "SELECT fil\u0435('{secret}')",
  "SELECT \uff46\uff49\uff4c\uff45('{secret}')",
  "SELECT `f\u0456le`('{secret}')",
  'SELECT "fil\u0435"(\'{secret}\')',
  // quoted names with line breaks, made to print fake parse-tree lines
  "SELECT `fi\\nle`('{secret}')",
  'SELECT `a\\n Function file (children 1)`',
  "SELECT 1 AS `x\\n    Function file (children 1)\\n     ExpressionList (children 1)\\n      Literal 'y'`",
  // nested, WITH, lambdas, aliases named like functions
  "SELECT (SELECT file('{secret}'))",
  "SELECT * FROM (SELECT * FROM (SELECT file('{secret}') AS x))",
  "WITH s AS (SELECT file('{secret}') AS x) SELECT * FROM s",
  "WITH file('{secret}') AS x SELECT x",
  "SELECT arrayMap(x -> file(x), ['{secret}'])",
  "SELECT arrayMap(x -> `file`(x), ['{secret}'])",
  "SELECT arrayFilter(x -> length(file(x)) > 0, ['{secret}'])",
  "SELECT 1 AS file, file('{secret}')",
  "SELECT count() FROM {db}.events WHERE actor IN (SELECT file('{secret}'))",
  "SELECT 1 UNION ALL SELECT length(file('{secret}'))",
  // table functions in FROM, JOIN, IN and subqueries
  "SELECT * FROM file('{secret}', 'LineAsString')",
  "select * from `file`('{secret}', 'LineAsString')",
  "SELECT * FROM {db}.events AS e JOIN file('{secret}', 'LineAsString') AS f ON 1",
  "SELECT * FROM {db}.events WHERE actor IN (SELECT line FROM file('{secret}', 'LineAsString'))",
  "SELECT * FROM {db}.events WHERE actor GLOBAL IN (SELECT * FROM file('{secret}', 'LineAsString'))",
  "SELECT * FROM url('http://127.0.0.1:{port}/x', 'LineAsString')",
  "SELECT * FROM URL('http://127.0.0.1:{port}/x', 'LineAsString', 'line String')",
  "SELECT * FROM numbers(1) AS n JOIN url('http://127.0.0.1:{port}/', 'LineAsString') AS u ON 1",
  "SELECT * FROM s3('http://127.0.0.1:{port}/bucket/key', 'LineAsString')",
  "SELECT * FROM remote('127.0.0.1:{port}', system.one)",
  "SELECT * FROM remoteSecure('127.0.0.1:{port}', system.one)",
  "SELECT * FROM cluster('default', system.one)",
  "SELECT * FROM clusterAllReplicas('default', system.one)",
  "SELECT * FROM mysql('127.0.0.1:{port}', 'db', 't', 'u', 'p')",
  "SELECT * FROM postgresql('127.0.0.1:{port}', 'db', 't', 'u', 'p')",
  "SELECT * FROM executable('cat /etc/hostname', 'LineAsString', 'x String')",
  "SELECT * FROM input('x String')",
  "SELECT * FROM view(SELECT file('{secret}'))",
  'SELECT * FROM view(SELECT 1)',
  "SELECT * FROM merge('system', '^settings$')",
  "SELECT * FROM merge('{db}', '.*')",
  "SELECT * FROM dictionary('d')",
  "SELECT * FROM generateRandom('x String')",
  // dictionaries, other tables by name, the server's own state
  "SELECT dictGet('d', 'a', toUInt64(1))",
  "SELECT joinGet('{db}.events', 'seq', 1)",
  "SELECT getSetting('readonly')",
  "SELECT getServerSetting('user_files_path')",
  'SELECT hostName()',
  'SELECT currentUser()',
  'SELECT sleep(3)',
  "SELECT aiGenerate('hello')",
  "SELECT arrayReduce('sum', [1, 2])",
  "SELECT formatRow('CSV', 1)",
  // system tables and other databases
  'SELECT * FROM system.settings',
  "SELECT name, value FROM system.settings WHERE name = 'readonly'",
  'SELECT * FROM `system`.`settings`',
  'SELECT * FROM "system"."server_settings"',
  'SELECT * FROM system.tables',
  'SELECT * FROM system.users',
  'SELECT * FROM information_schema.tables',
  'SELECT * FROM INFORMATION_SCHEMA.COLUMNS',
  'SELECT * FROM default.events',
  'SELECT count() FROM {db}.events AS e, system.one',
  'SELECT count() FROM {db}.events WHERE seq IN system.numbers',
  "SELECT (SELECT value FROM system.settings WHERE name = 'readonly')",
  // SETTINGS, FORMAT, INTO OUTFILE
  'SELECT 1 SETTINGS readonly = 0',
  'SELECT 1 SETTINGS max_execution_time = 1000',
  'SELECT count() FROM {db}.events SETTINGS max_threads = 1',
  'SELECT 1 FORMAT CSV',
  'select 1 format TabSeparatedRaw',
  "SELECT 1 INTO OUTFILE '{out}'",
  "SELECT 1 INTO OUTFILE '{out}' FORMAT CSV",
  "SELECT * FROM (SELECT 1) INTO OUTFILE '{out}' TRUNCATE",
  // several statements
  'SELECT 1; SELECT 2',
  "SELECT 1; SELECT file('{secret}')",
  "SELECT 1;\n-- next\nSELECT file('{secret}')",
  // not read-only, or not a statement analysts need
  'DROP TABLE {db}.events',
  'INSERT INTO {db}.events (seq) VALUES (1)',
  'ALTER TABLE {db}.events DELETE WHERE 1',
  'SET readonly = 0',
  'CREATE TABLE t (x Int32) ENGINE = Memory',
  'SYSTEM DROP DNS CACHE',
  'KILL QUERY WHERE 1',
  'SHOW DATABASES',
  "SHOW SETTINGS LIKE '%path%'",
  'SHOW CREATE TABLE {db}.events',
  'SHOW TABLES FROM system',
  'DESCRIBE TABLE system.settings',
  "DESCRIBE file('{secret}')",
  "EXPLAIN SELECT file('{secret}')",
  'EXPLAIN PIPELINE header = 1 SELECT 1',
  'EXPLAIN AST SELECT * FROM system.settings',
  'EXISTS TABLE system.settings',
  // parameters, transformers that call functions by name, empty input
  'SELECT {p:String}',
  'SELECT * APPLY(toString) FROM {db}.events',
  ' ',
  '-- only a comment',
];

/**
 * What a refused query must not reach: `secret` written to `file` (a file function would read it) and a
 * loopback HTTP server answering it (a url function would call it). `hits()` counts the calls.
 */
export async function startCanary(file: string, secret: string): Promise<{ port: number; hits(): number; close(): Promise<void> }> {
  fs.writeFileSync(file, secret);
  let hits = 0;
  const server = http.createServer((_req, res) => {
    hits++;
    res.end(secret);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    hits: () => hits,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
