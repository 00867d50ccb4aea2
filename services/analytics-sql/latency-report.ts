import type { z } from 'zod';
import type { LatencyReport, LatencyReportQuery } from '../../contracts/index.js';
import { chTime, isoSeconds, rows, type ReportContext, type Window } from './report-sql.js';

/**
 * Send-to-deliver latency from the per-minute rollups: exact percentiles
 * merged from quantileTiming states, and the fixed-bucket histogram.
 */

const BUCKET_OF_MINUTE = { minute: 'minute', hour: 'toStartOfHour(minute)', day: 'toStartOfDay(minute)' } as const;
/** The histogram's overflow bucket (migrations/clickhouse/0005). */
const OVERFLOW_LE_MS = 4294967295;

interface Row {
  t?: string;
  n: string;
  mx: number;
  q: number[];
}

/** quantileTiming of nothing is NaN; an empty bucket reads as zeros. */
const ms = (v: number | undefined) => (typeof v === 'number' && Number.isFinite(v) ? Math.round(v) : 0);

function percentiles(r: Row) {
  return { deliveries: Number(r.n), p50Ms: ms(r.q[0]), p90Ms: ms(r.q[1]), p99Ms: ms(r.q[2]), p999Ms: ms(r.q[3]), maxMs: ms(Number(r.mx)) };
}

export async function latencyReport(ctx: ReportContext, q: z.infer<typeof LatencyReportQuery>, w: Window): Promise<LatencyReport> {
  const params = { from: chTime(w.from), to: chTime(w.to) };
  const where = `minute >= {from:DateTime64(3, 'UTC')} AND minute < {to:DateTime64(3, 'UTC')}`;
  const select = `sum(deliveries) AS n, max(max_ms) AS mx, quantilesTimingMerge(0.5, 0.9, 0.99, 0.999)(latency) AS q`;
  const [buckets, totals, histogram] = await Promise.all([
    rows<Row>(
      ctx,
      `SELECT toUnixTimestamp(${BUCKET_OF_MINUTE[q.granularity]}) AS t, ${select} FROM {db}.delivery_latency_by_minute WHERE ${where} GROUP BY t ORDER BY t`,
      params,
    ),
    rows<Row>(ctx, `SELECT ${select} FROM {db}.delivery_latency_by_minute WHERE ${where}`, params),
    rows<{ le: string | number; n: string }>(
      ctx,
      `SELECT le_ms AS le, sum(deliveries) AS n FROM {db}.delivery_latency_histogram WHERE ${where} GROUP BY le ORDER BY le`,
      params,
    ),
  ]);
  return {
    report: 'latency',
    from: w.from.toISOString(),
    to: w.to.toISOString(),
    granularity: q.granularity,
    total: totals[0] ? percentiles(totals[0]) : percentiles({ n: '0', mx: 0, q: [] }),
    rows: buckets.map((r) => ({ bucket: isoSeconds(r.t!), ...percentiles(r) })),
    histogram: histogram.map((h) => ({ leMs: Number(h.le) === OVERFLOW_LE_MS ? null : Number(h.le), deliveries: Number(h.n) })),
  };
}
