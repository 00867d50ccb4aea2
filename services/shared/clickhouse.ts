import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import fs from 'node:fs';
import path from 'node:path';
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
 * Limits of the read-only session that analysts' SQL and the standard
 * reports run in: they share the platform's process in embedded mode, so a
 * runaway query must stop rather than starve the gateway.
 */
const READ_ONLY_LIMITS = {
  max_result_rows: '100000',
  result_overflow_mode: 'break',
  max_execution_time: 30,
  max_memory_usage: '2000000000',
} as const;

/**
 * A second client for reads on behalf of people. Against a server, every
 * query carries readonly=2 (no writes, no DDL; settings may change, except
 * readonly itself). With chDB, a second session on the same data directory
 * (its own settings) is switched to readonly=1 for good: no writes, no DDL,
 * no SET, so the limits above hold too.
 */
export async function createReadOnlyAnalyticsClient(config: Config): Promise<ClickHouseClient> {
  const { url, user, password } = config.clickhouse;
  if (url) {
    return createClient({
      url,
      ...(user ? { username: user } : {}),
      ...(password ? { password } : {}),
      request_timeout: 60_000,
      clickhouse_settings: { ...READ_ONLY_LIMITS, readonly: '2' as const },
    });
  }
  const client = createAnalyticsClient(config);
  const limits = Object.entries(READ_ONLY_LIMITS).map(([k, v]) => `${k} = ${/^\d+$/.test(String(v)) ? v : `'${v}'`}`);
  await client.command({ query: `SET ${limits.join(', ')}` });
  await client.command({ query: 'SET readonly = 1' });
  return client;
}
