/**
 * Expands the grafana-clickhouse-datasource macros our dashboard uses the way
 * the plugin does before it sends the query (its documented expansions), for
 * a given time range in Unix seconds.
 */
export function expandClickHouseMacros(sql: string, range: { from: number; to: number; intervalSeconds: number }): string {
  const { from, to, intervalSeconds } = range;
  return sql
    .replace(/\$__timeFilter\(([^)]+)\)/g, (_, col: string) => `${col.trim()} >= toDateTime(${from}) AND ${col.trim()} <= toDateTime(${to})`)
    .replace(/\$__timeInterval\(([^)]+)\)/g, (_, col: string) => `toStartOfInterval(toDateTime(${col.trim()}), INTERVAL ${intervalSeconds} second)`)
    .replace(/\$__fromTime\b/g, `toDateTime(${from})`)
    .replace(/\$__toTime\b/g, `toDateTime(${to})`)
    .replace(/\$__interval_s\b/g, String(intervalSeconds));
}
