/**
 * The engine's side of analysts' SQL (the second layer, under the parse-tree
 * check): the settings of the read-only session every analyst query and
 * standard report runs in (`createReadOnlyAnalyticsClient`). Embedded chDB
 * shares the platform's process, so a runaway query must stop rather than
 * starve the gateway.
 *
 * - readonly: no INSERT, DDL or SET, and (at 1) no table function but
 *   `numbers` (chDB answers READONLY for file, url, executable...). chDB gets
 *   1 for the whole session; a server gets 2 on every query, because over
 *   HTTP the limits below travel as per-query settings, which 1 forbids.
 * - allow_ddl 0, allow_introspection_functions 0 (chDB turns the latter on).
 * - limits: 100,000 result rows (then the answer is cut), 30 s, 2 GB.
 *
 * What the engine cannot refuse in chDB is why the parse-tree check exists:
 * chDB runs as clickhouse-local, where the scalar `file()` reads any path
 * (user_files_path does not confine it), system tables answer, and INTO
 * OUTFILE writes even at readonly = 1.
 */
export const ANALYST_LIMITS = {
  allow_ddl: 0,
  allow_introspection_functions: 0,
  max_result_rows: '100000',
  result_overflow_mode: 'break',
  max_execution_time: 30,
  max_memory_usage: '2000000000',
} as const;

/** readonly for each kind of engine (see above). */
export const ANALYST_READONLY = { chdb: 1, server: 2 } as const;
