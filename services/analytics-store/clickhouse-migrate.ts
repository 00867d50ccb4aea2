import type { ClickHouseClient } from '@clickhouse/client';
import { clickhouseMigrations } from '../../migrations/clickhouse/index.js';
import type { Logger } from '../observability/logger.js';

/**
 * Applies pending ClickHouse migrations in order. Statements use `{db}` for
 * the analytics database name, so the same migrations serve chDB and a
 * ClickHouse server.
 */
export async function migrateClickHouse(client: ClickHouseClient, database: string, log: Logger): Promise<void> {
  const q = (sql: string) => sql.replaceAll('{db}', database);
  await client.command({ query: q('CREATE DATABASE IF NOT EXISTS {db}') });
  await client.command({
    query: q(
      "CREATE TABLE IF NOT EXISTS {db}.schema_migrations (name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = MergeTree ORDER BY name",
    ),
  });
  const rs = await client.query({ query: q('SELECT name FROM {db}.schema_migrations'), format: 'JSONEachRow' });
  const applied = new Set((await rs.json<{ name: string }>()).map((r) => r.name));
  for (const migration of clickhouseMigrations) {
    if (applied.has(migration.name)) continue;
    for (const statement of migration.statements) await client.command({ query: q(statement) });
    await client.insert({ table: `${database}.schema_migrations`, values: [{ name: migration.name }], format: 'JSONEachRow' });
    log.info('clickhouse migration applied', { migration: migration.name });
  }
}
