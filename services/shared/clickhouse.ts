import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import fs from 'node:fs';
import path from 'node:path';
import { ANALYST_LIMITS, ANALYST_READONLY } from './analytics/sql-guard/settings.js';
import type { Config } from './config.js';

/**
 * One code path for analytics: `@clickhouse/client` talks to a ClickHouse
 * server when CLICKHOUSE_URL is set, and otherwise to embedded chDB through
 * the client's connection hook. chDB binds one data directory per process, so
 * in embedded mode exactly one process of the platform opens it.
 */
export function createAnalyticsClient(config: Config): ClickHouseClient {
  const { url, user, password } = config.clickhouse;
  if (url) {
    return createClient({
      url,
      ...(user ? { username: user } : {}),
      ...(password ? { password } : {}),
      request_timeout: 30_000,
    });
  }
  const dir = path.join(config.dataDir, 'chdb');
  fs.mkdirSync(dir, { recursive: true });
  // chdb builds against its own copy of @clickhouse/client-common; the shapes match at runtime.
  const connection = createChdbConnection({ path: dir }) as unknown as NonNullable<Parameters<typeof createClient>[0]>['connection'];
  return createClient({ connection });
}

/**
 * A second client for reads on behalf of people: analysts' SQL (after the
 * parse-tree check in analytics/sql-guard/) and the standard reports. Its
 * current database is the analytics database, and it carries the analyst
 * settings (analytics/sql-guard/settings.ts: limits, no DDL, no
 * introspection). Against a server every query carries them with
 * readonly=2 (no writes, no DDL; per-query settings allowed, except
 * readonly itself). With chDB, a second session on the same data directory
 * (its own settings) is switched to them and then to readonly=1 for good:
 * no writes, no DDL, no SET, no table functions but numbers().
 */
export async function createReadOnlyAnalyticsClient(config: Config): Promise<ClickHouseClient> {
  const { url, user, password, database } = config.clickhouse;
  if (url) {
    return createClient({
      url,
      database,
      ...(user ? { username: user } : {}),
      ...(password ? { password } : {}),
      request_timeout: 60_000,
      clickhouse_settings: { ...ANALYST_LIMITS, readonly: String(ANALYST_READONLY.server) },
    });
  }
  const client = createAnalyticsClient(config);
  try {
    const limits = Object.entries(ANALYST_LIMITS).map(([k, v]) => `${k} = ${/^\d+$/.test(String(v)) ? v : `'${v}'`}`);
    await client.command({ query: `SET ${limits.join(', ')}` });
    // Unqualified table names then resolve to the analytics database (the guard relies on it).
    await client.command({ query: `USE ${database}` }).catch((err: unknown) => {
      throw new Error(`analytics database ${database} does not exist yet: start the platform once (it applies the migrations)`, { cause: err });
    });
    await client.command({ query: `SET readonly = ${ANALYST_READONLY.chdb}` });
  } catch (err) {
    await client.close().catch(() => undefined);
    throw err;
  }
  return client;
}
