import type { ClickHouseClient } from '@clickhouse/client';
import type { SqlRequest, SqlResponse } from '../../../contracts/index.js';
import { AppError } from '../errors.js';
import { assertReadOnlySql } from './readonly-sql.js';

interface JsonCompactResult {
  meta?: { name: string; type: string }[];
  data?: unknown[][];
}

/** ClickHouse reports problems with the query as `Code: N. DB::Exception: ...`; anything else is ours. */
function isQueryError(err: unknown): boolean {
  const e = err as { code?: unknown; type?: unknown; message?: unknown };
  return typeof e?.message === 'string' && (e.type !== undefined || /DB::Exception|Code: \d+/.test(e.message));
}

/**
 * Runs one analyst statement on a read-only client (see
 * `createReadOnlyAnalyticsClient`): checked statically first, then executed
 * in a session where writes cannot happen anyway.
 */
export async function runReadOnlySql(client: ClickHouseClient, request: SqlRequest): Promise<SqlResponse> {
  const statement = assertReadOnlySql(request.query);
  const started = performance.now();
  let result: JsonCompactResult;
  try {
    const rs = await client.query({ query: statement, format: 'JSONCompact' });
    // JSONCompact: one object with meta (columns) and data (rows as arrays).
    result = (await rs.json()) as unknown as JsonCompactResult;
  } catch (err) {
    if (!isQueryError(err)) throw err;
    const message = String((err as Error).message).replace(/\s+/g, ' ').slice(0, 2000);
    if (/readonly/i.test(message)) throw new AppError('sql_rejected', `ClickHouse refused a write in the read-only session: ${message}`, { cause: err });
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
