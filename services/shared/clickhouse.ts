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
