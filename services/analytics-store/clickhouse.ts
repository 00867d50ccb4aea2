import { createClient, type ClickHouseClient } from '@clickhouse/client';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ANALYST_LIMITS, ANALYST_READONLY } from '../analytics-sql/sql-guard/settings.js';
import type { Config } from '../runtime/config.js';

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
  // Loaded here, not imported: the native engine (a large shared library) costs every CLI command ~0.1 s to map otherwise.
  const { createChdbConnection } = createRequire(import.meta.url)('chdb/connection') as typeof import('chdb/connection');
  const connection = isolateFailures(createChdbConnection({ path: dir })) as unknown as NonNullable<Parameters<typeof createClient>[0]>['connection'];
  return createClient({ connection });
}

const SESSION_CALLS = new Set(['query', 'exec', 'command', 'insert']);

/**
 * chDB (3.4) keeps the output a failed statement had already written (its
 * format's header, the rows of a first block) and hands it to the next
 * statement of the same session, in front of that statement's own answer:
 * after one analyst's query failed, the next one (anyone's, a report, the
 * SQL guard's own parse) read a JSON header or rows that were not its own
 * and answered 500, or could have returned them as its result. So the calls
 * of one session run one at a time, and a failed one is followed by a
 * throwaway statement that takes the leftover before the next call starts.
 * (Statements of one session share the engine's threads anyway; the ingest
 * client and the analysts' client are separate sessions.)
 */
function isolateFailures<T extends object>(connection: T): T {
  const calls = connection as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  let tail: Promise<unknown> = Promise.resolve();
  const drain = async () => {
    try {
      const result = (await calls.query!.call(connection, { query: 'SELECT 1' })) as { stream?: AsyncIterable<unknown> };
      if (result.stream) for await (const _ of result.stream); // discarded: the leftover and the 1
    } catch {
      // A session that cannot even run SELECT 1 fails the next call too, which then drains again.
    }
  };
  return new Proxy(connection, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof prop !== 'string' || !SESSION_CALLS.has(prop) || typeof value !== 'function') {
        return typeof value === 'function' ? value.bind(target) : value;
      }
      return (...args: unknown[]) => {
        const run = tail.then(async () => {
          try {
            return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          } catch (err) {
            await drain();
            throw err;
          }
        });
        tail = run.catch(() => undefined);
        return run;
      };
    },
  });
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
