import type { ClickHouseClient } from '@clickhouse/client';

/** Shared plumbing of the report queries: the window, parameter formats, and running a query. */

export interface ReportContext {
  client: ClickHouseClient;
  database: string;
  /** Injected for tests; defaults to the wall clock. */
  now?: () => Date;
}

export interface Window {
  from: Date;
  to: Date;
}

const WEEK_MS = 7 * 86_400_000;

export function resolveWindow(q: { from?: Date | undefined; to?: Date | undefined }, now: Date): Window {
  const to = q.to ?? now;
  return { from: q.from ?? new Date(to.getTime() - WEEK_MS), to };
}

/** DateTime64(3) parameter text: 'YYYY-MM-DD hh:mm:ss.mmm' in UTC. */
export function chTime(d: Date): string {
  return d.toISOString().replace('T', ' ').replace('Z', '');
}

export const isoSeconds = (unixSeconds: number | string): string => new Date(Number(unixSeconds) * 1000).toISOString();

export async function rows<T>(ctx: ReportContext, query: string, params: Record<string, unknown>): Promise<T[]> {
  const rs = await ctx.client.query({ query: query.replaceAll('{db}', ctx.database), query_params: params, format: 'JSONEachRow' });
  return rs.json<T>();
}
