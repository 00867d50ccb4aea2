import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type pg from 'pg';

/**
 * Marks a statement to be prepared once per connection and then only bound
 * and executed: put `${PREPARED}` first in a `sql` template. For the
 * statements every projection batch runs (a few a batch, dozens of batches
 * a second), where Postgres would otherwise parse and analyse the same text
 * each time. Only fixed texts qualify (arrays travel as one parameter, so an
 * `unnest` of any length is one text): each distinct text stays prepared on
 * every connection for the connection's life. Postgres re-plans a prepared
 * statement by itself when a table it reads changes or the search_path
 * differs (a rebuild's shadow schema), so the same text serves both.
 */
export const PREPARED = sql.raw('/* prepared */ ');
const MARK = '/* prepared */ ';

/** Makes the pool's clients send marked statements as named (prepared) ones; call from the pool's `connect` event. */
export function prepareMarkedStatements(client: pg.PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  const names = new Map<string, string>();
  (client as { query: unknown }).query = (config: unknown, values?: unknown, callback?: unknown) => {
    if (typeof config === 'string' && config.startsWith(MARK) && Array.isArray(values) && callback === undefined) {
      let name = names.get(config);
      if (name === undefined) names.set(config, (name = `p_${createHash('sha1').update(config).digest('hex').slice(0, 24)}`));
      return query({ name, text: config, values });
    }
    return callback === undefined ? (values === undefined ? query(config) : query(config, values)) : query(config, values, callback);
  };
}
