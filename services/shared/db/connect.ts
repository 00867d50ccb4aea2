import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Logger } from '../logger.js';
import type { Database } from './schema.js';

// BIGINT sequences fit in a double up to 2^53; keep them as strings in kysely
// types but never let pg silently truncate.
export function createDb(url: string, log: Logger, options: { max?: number } = {}): Kysely<Database> {
  // Several workers share the pool in embedded mode; waiting for a connection fails after 10 s
  // instead of hanging a request (or a device's resume) forever.
  const pool = new pg.Pool({ connectionString: url, max: options.max ?? 20, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 10_000 });
  pool.on('error', (err) => log.warn('postgres pool client error', { err }));
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}
