import type { ClickHouseClient } from '@clickhouse/client';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { vetAnalyticsSql } from '../../analytics-sql/sql-guard/index.js';
import { ANALYST_LIMITS } from '../../analytics-sql/sql-guard/settings.js';
import type { Logger } from '../../observability/logger.js';
import { CH, ClickHouseFailure, failure, failureBody, httpStatusOf, toClickHouseFailure } from './clickhouse-errors.js';
import { contentTypeOf, DEFAULT_FORMAT, OUTPUT_FORMATS } from './formats.js';
import { bindableParams, credentialsMatch, credentialsOf, integerSetting, queryParams, queryText, readBody, type Credentials } from './request.js';

/**
 * A ClickHouse-compatible HTTP endpoint over the embedded engine, for the
 * tools analysts already use (@clickhouse/client, clickhouse-connect,
 * Grafana's ClickHouse data source, DBeaver's JDBC driver, curl). It speaks
 * the subset of ClickHouse's HTTP interface those clients need
 * (docs/analytics.md, "Connecting tools") and nothing else:
 *
 * - every statement passes the same parse-tree check as POST
 *   /v1/analytics/sql (vetAnalyticsSql) and runs, as the text that was
 *   checked, on the same read-only session (`Runtime.clickhouseReadOnly`,
 *   whose calls run one at a time and are reset after a failure);
 * - a trailing FORMAT clause is cut off by the guard and picks one of the
 *   output formats in formats.ts; `{name:Type}` parameters are checked with
 *   their values substituted (GuardOptions.params);
 * - no URL parameter becomes an engine setting: the session's limits
 *   (sql-guard/settings.ts: 100,000 rows, 30 s, 2 GB) hold, and
 *   `max_result_rows` can only tighten them (a LIMIT around a SELECT).
 *   A tighter `max_execution_time` is not applied: chDB cannot stop a
 *   statement from outside without desynchronising the shared session.
 *
 * chDB answers a query as one buffer, so the answer is bounded by the
 * session's limits (100,000 rows, 2 GB) and is written to the socket in
 * chunks, at the pace the client reads.
 */

export interface AnalyticsHttpOptions {
  host: string;
  port: number;
  credentials: Credentials;
  /** The analytics database: the only `database` accepted. */
  database: string;
  /** The read-only analysts' session (never the ingest client). */
  client: ClickHouseClient;
  log: Logger;
  /** Statements accepted at once (they queue on the session anyway); more answer 503 TOO_MANY_SIMULTANEOUS_QUERIES. */
  maxConcurrent?: number;
}

export interface AnalyticsHttpServer {
  port: number;
  stop(): Promise<void>;
}

const CHUNK = 64 * 1024;
const MAX_ROWS = Number(ANALYST_LIMITS.max_result_rows);

export async function startAnalyticsHttp(options: AnalyticsHttpOptions): Promise<AnalyticsHttpServer> {
  const { client, log, database, credentials } = options;
  const maxConcurrent = options.maxConcurrent ?? 8;
  const engine = await engineInfo(client);
  const displayName = os.hostname();
  let running = 0;

  const fail = (res: http.ServerResponse, err: unknown, queryId: string | undefined) => {
    const f = toClickHouseFailure(err);
    if (f.code === 1001) log.error('analytics HTTP request failed', { err });
    else log.debug('analytics HTTP request refused', { code: f.code, type: f.type, message: f.message });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const headers: http.OutgoingHttpHeaders = {
      'Content-Type': 'text/plain; charset=UTF-8',
      'X-ClickHouse-Exception-Code': String(f.code),
      'X-ClickHouse-Server-Display-Name': displayName,
    };
    if (queryId) headers['X-ClickHouse-Query-Id'] = queryId;
    res.writeHead(httpStatusOf(f.code), headers);
    res.end(failureBody(f, engine.version));
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://analytics.invalid');
    const method = req.method ?? 'GET';
    if ((url.pathname === '/ping' || url.pathname === '/replicas_status') && (method === 'GET' || method === 'HEAD')) {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=UTF-8' });
      res.end('Ok.\n');
      return;
    }
    if (url.pathname !== '/' || (method !== 'GET' && method !== 'POST')) {
      req.resume();
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=UTF-8' });
      res.end(`There is no handle ${url.pathname} (${method}): use / (GET or POST) for queries or /ping\n`);
      return;
    }
    // Echoed in a header: printable ASCII only (anything else gets an id of ours).
    const askedId = url.searchParams.get('query_id') ?? '';
    const queryId = /^[\x21-\x7e]{1,128}$/.test(askedId) ? askedId : randomUUID();
    try {
      if (!credentialsMatch(credentialsOf(req, url), credentials)) {
        req.resume();
        throw failure(
          CH.AUTHENTICATION_FAILED,
          `${credentialsOf(req, url).user}: Authentication failed: password is incorrect, or there is no user with such name`,
        );
      }
      if (
        String(req.headers['content-type'] ?? '')
          .toLowerCase()
          .startsWith('multipart/')
      ) {
        throw failure(CH.NOT_IMPLEMENTED, 'multipart requests (query parameters in the body) are not supported; send them as param_<name> URL parameters');
      }
      const body = method === 'POST' ? await readBody(req) : '';
      const sql = queryText(url, body);
      // An empty GET / is ClickHouse's liveness answer too.
      if (sql.trim() === '' && method === 'GET') {
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=UTF-8' });
        res.end('Ok.\n');
        return;
      }
      const requestedDb =
        url.searchParams.get('database') ?? (typeof req.headers['x-clickhouse-database'] === 'string' ? req.headers['x-clickhouse-database'] : '');
      if (requestedDb !== '' && requestedDb !== database) {
        throw failure(CH.ACCESS_DENIED, `database ${requestedDb} is not available here: analysts read the analytics database ${database}`);
      }
      const readonly = url.searchParams.get('readonly');
      if (readonly !== null && readonly !== '1' && readonly !== '2') {
        throw failure(CH.READONLY, `Cannot modify 'readonly' setting in readonly mode`);
      }
      const defaultFormat =
        url.searchParams.get('default_format') ?? (typeof req.headers['x-clickhouse-format'] === 'string' ? req.headers['x-clickhouse-format'] : null);
      let format = DEFAULT_FORMAT;
      if (defaultFormat) {
        const known = OUTPUT_FORMATS.get(defaultFormat.toLowerCase());
        if (!known)
          throw failure(
            CH.UNKNOWN_FORMAT,
            `Unknown or unsupported output format ${defaultFormat.slice(0, 64)} (formats: ${[...new Set(OUTPUT_FORMATS.values())].join(', ')})`,
          );
        format = known;
      }
      const maxRows = integerSetting(url, 'max_result_rows');
      const params = bindableParams(sql, queryParams(url));
      if (running >= maxConcurrent) throw failure(CH.TOO_MANY_SIMULTANEOUS_QUERIES, `Too many simultaneous queries. Maximum: ${maxConcurrent}`);
      running++;
      try {
        const vetted = await vetAnalyticsSql(client, sql, { database, params, formats: OUTPUT_FORMATS });
        if (vetted.format) format = vetted.format;
        // Tighter row limit than the session's: a LIMIT around the vetted SELECT (result_overflow_mode is always break).
        const query =
          maxRows !== undefined && maxRows > 0 && maxRows < MAX_ROWS && vetted.kind === 'select'
            ? `SELECT * FROM (${vetted.query}) LIMIT ${maxRows}`
            : vetted.query;
        const started = performance.now();
        const result = await client.exec({
          query,
          query_id: queryId,
          // chDB's connection turns default_format into its output option; the client's type lists only its own formats.
          clickhouse_settings: { default_format: format as 'JSON' },
          ...(Object.keys(params).length > 0 ? { query_params: params } : {}),
        });
        const chunks: Buffer[] = [];
        for await (const chunk of result.stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
        const output = Buffer.concat(chunks);
        const summary = { ...(result.summary ?? {}), result_bytes: String(output.length), elapsed_ns: String(Math.round((performance.now() - started) * 1e6)) };
        res.writeHead(200, {
          'Content-Type': contentTypeOf(format),
          'Content-Length': String(output.length),
          'X-ClickHouse-Query-Id': queryId,
          'X-ClickHouse-Format': format,
          'X-ClickHouse-Timezone': engine.timezone,
          'X-ClickHouse-Server-Display-Name': displayName,
          'X-ClickHouse-Summary': JSON.stringify(summary),
        });
        await writeChunked(res, output);
      } finally {
        running--;
      }
    } catch (err) {
      req.resume(); // a body not read yet (refused before it) is drained, so the connection stays usable
      fail(res, err, queryId);
    }
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => fail(res, err, undefined));
  });
  server.headersTimeout = 30_000;
  server.requestTimeout = 120_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    async stop() {
      server.closeIdleConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Writes `data` in chunks, waiting for 'drain' when the socket's buffer is full (a slow reader is not buffered twice). */
async function writeChunked(res: http.ServerResponse, data: Buffer): Promise<void> {
  for (let offset = 0; offset < data.length; offset += CHUNK) {
    if (res.destroyed) return;
    if (!res.write(data.subarray(offset, offset + CHUNK))) {
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    }
  }
  res.end();
}

/** The engine's version and time zone, for error bodies and headers (read once, on the read-only session). */
async function engineInfo(client: ClickHouseClient): Promise<{ version: string; timezone: string }> {
  const rs = await client.query({ query: 'SELECT version() AS version, timezone() AS timezone', format: 'JSONEachRow' });
  const [row] = await rs.json<{ version: string; timezone: string }>();
  return { version: row?.version ?? 'unknown', timezone: row?.timezone ?? 'UTC' };
}

export { ClickHouseFailure };
