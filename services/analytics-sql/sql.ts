import type { ClickHouseClient } from '@clickhouse/client';
import type { SqlRequest, SqlResponse } from '../../contracts/index.js';
import { AppError } from '../runtime/errors.js';
import { clickhouseErrorMessage, vetAnalyticsSql } from './sql-guard/index.js';
import { execText } from './sql-guard/exec.js';

interface JsonCompactResult {
  meta?: { name: string; type: string }[];
  data?: unknown[][];
}

/** The session's current database, which createReadOnlyAnalyticsClient sets to the analytics database. */
const sessionDatabases = new WeakMap<ClickHouseClient, Promise<string>>();
function sessionDatabase(client: ClickHouseClient): Promise<string> {
  let db = sessionDatabases.get(client);
  if (!db) {
    db = client.query({ query: 'SELECT currentDatabase() AS db', format: 'JSONEachRow' }).then(async (rs) => (await rs.json<{ db: string }>())[0]!.db);
    db.catch(() => sessionDatabases.delete(client));
    sessionDatabases.set(client, db);
  }
  return db;
}

/**
 * Runs one analyst statement on a read-only client (see
 * `createReadOnlyAnalyticsClient`): vetted on its parse tree first
 * (sql-guard/), then executed, as the canonical text that was vetted, in a
 * session where writes, settings changes and table functions fail anyway.
 * `database` is the analytics database (default: the session's current one).
 */
export async function runReadOnlySql(client: ClickHouseClient, request: SqlRequest, database?: string): Promise<SqlResponse> {
  const vetted = await vetAnalyticsSql(client, request.query, { database: database ?? (await sessionDatabase(client)) });
  const started = performance.now();
  let result: JsonCompactResult;
  try {
    // JSONCompact: one object with meta (columns) and data (rows as arrays).
    const text = await execText(client, vetted.query, 'JSONCompact');
    result = text.trim() === '' ? {} : (JSON.parse(text) as JsonCompactResult);
  } catch (err) {
    if (err instanceof SyntaxError) throw new AppError('sql_failed', 'ClickHouse answered something that is not JSON; narrow the query', { cause: err });
    const message = clickhouseErrorMessage(err);
    if (message === null) throw err;
    if (/readonly/i.test(message)) throw new AppError('sql_rejected', `ClickHouse refused it in the read-only session: ${message}`, { cause: err });
    throw new AppError('sql_failed', message, { cause: err });
  }
  const data = result.data ?? [];
  const rows = data.length > request.maxRows ? data.slice(0, request.maxRows) : data;
  return {
    columns: (result.meta ?? []).map((m) => ({ name: m.name, type: m.type })),
    rows,
    rowCount: rows.length,
    truncated: data.length > request.maxRows,
    elapsedMs: Math.round((performance.now() - started) * 10) / 10,
  };
}
