import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Logger } from '../observability/logger.js';
import { observePostgresQuery } from '../observability/storage-full.js';
import { prepareMarkedStatements } from './prepared.js';
import type { Database } from './schema.js';

// BIGINT sequences fit in a double up to 2^53; keep them as strings in kysely
// types but never let pg silently truncate.
export function createDb(url: string, log: Logger, options: { max?: number } = {}): Kysely<Database> {
  // Several workers share the pool in embedded mode; waiting for a connection fails after 10 s
  // instead of hanging a request (or a device's resume) forever.
  const pool = new pg.Pool({ connectionString: url, max: options.max ?? 20, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 10_000 });
  pool.on('error', (err) => log.warn('postgres pool client error', { err }));
  // pg only guards idle clients; a checked-out client whose server goes away emits 'error' too,
  // which would otherwise crash the process. The query in flight fails on its own.
  pool.on('connect', (client) => {
    client.on('error', (err) => log.warn('postgres connection lost', { err }));
    prepareMarkedStatements(client);
  });
  // A full disk (SQLSTATE class 53) stalls projections without failing any request: /healthz learns of it here.
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log: observePostgresQuery });
}
