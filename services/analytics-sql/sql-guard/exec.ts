import type { ClickHouseClient } from '@clickhouse/client';

/**
 * Runs a statement and returns its output in `format`, chosen through the
 * `default_format` setting rather than a FORMAT clause: `client.query`
 * appends `FORMAT x` to the text, which after `EXPLAIN ... SELECT` binds to
 * the inner SELECT instead of to EXPLAIN. chDB's connection turns
 * default_format into its output option (no SET, so it works in a readonly
 * session); a server takes it as a per-query setting.
 */
export async function execText(
  client: ClickHouseClient,
  query: string,
  format: 'JSONEachRow' | 'JSONCompact',
  signal?: AbortSignal,
  params?: Record<string, string | null>,
): Promise<string> {
  const result = await client.exec({
    query,
    clickhouse_settings: { default_format: format },
    ...(signal ? { abort_signal: signal } : {}),
    ...(params && Object.keys(params).length > 0 ? { query_params: params } : {}),
  });
  const chunks: Buffer[] = [];
  for await (const chunk of result.stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks).toString('utf8');
}
