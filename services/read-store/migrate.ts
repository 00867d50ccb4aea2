import { Migrator, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import { postgresMigrations } from '../../migrations/postgres/index.js';
import type { Logger } from '../observability/logger.js';

class StaticProvider implements MigrationProvider {
  constructor(private readonly migrations: Record<string, Migration>) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return this.migrations;
  }
}

/** Applies every pending Postgres migration; safe to run from several processes (kysely takes a lock). */
export async function migratePostgres(db: Kysely<any>, log: Logger): Promise<void> {
  const migrator = new Migrator({ db, provider: new StaticProvider(postgresMigrations) });
  const { error, results } = await migrator.migrateToLatest();
  for (const r of results ?? []) {
    if (r.status === 'Success') log.info('postgres migration applied', { migration: r.migrationName });
    if (r.status === 'Error') log.error('postgres migration failed', { migration: r.migrationName });
  }
  if (error) throw error instanceof Error ? error : new Error(String(error));
}
