import type { z } from 'zod';
import type { RetentionReport, RetentionReportQuery } from '../../contracts/index.js';
import { chTime, rows, type ReportContext, type Window } from './report-sql.js';

/**
 * Retention cohorts: users grouped by the day or week (Monday) of their first
 * activity ever (`user_first_seen`), counting for each later period how many
 * of them were active (`active_users_daily`). Cohorts are the periods that
 * touch the window; offsets run up to `offsets - 1` periods after the cohort,
 * whether or not they fall inside the window. Periods with no returning user
 * are absent (rate 0).
 */

const PERIOD = {
  day: { of: (col: string) => `toDate(${col})`, days: 1 },
  week: { of: (col: string) => `toMonday(${col})`, days: 7 },
} as const;

export async function retentionReport(ctx: ReportContext, q: z.infer<typeof RetentionReportQuery>, w: Window): Promise<RetentionReport> {
  const p = PERIOD[q.period];
  const data = await rows<{ cohort: string; size: string; offset: string; active: string }>(
    ctx,
    `WITH
       cohorts AS (
         SELECT user_id, ${p.of('min(first_at)')} AS cohort
         FROM {db}.user_first_seen GROUP BY user_id
         HAVING cohort >= ${p.of("{from:DateTime64(3, 'UTC')}")}
            AND cohort <= ${p.of("{to:DateTime64(3, 'UTC')} - INTERVAL 1 MILLISECOND")}
       ),
       sizes AS (SELECT cohort, count() AS size FROM cohorts GROUP BY cohort),
       activity AS (
         SELECT DISTINCT ${p.of('day')} AS period, user_id FROM {db}.active_users_daily
         WHERE day >= ${p.of("{from:DateTime64(3, 'UTC')}")}
       )
     SELECT toString(c.cohort) AS cohort, any(s.size) AS size,
       intDiv(dateDiff('day', c.cohort, a.period), ${p.days}) AS offset, uniqExact(c.user_id) AS active
     FROM cohorts AS c
     INNER JOIN activity AS a ON a.user_id = c.user_id
     INNER JOIN sizes AS s ON s.cohort = c.cohort
     WHERE a.period >= c.cohort AND offset < {offsets:UInt32}
     GROUP BY c.cohort, offset
     ORDER BY c.cohort, offset`,
    { from: chTime(w.from), to: chTime(w.to), offsets: q.offsets },
  );
  return {
    report: 'retention',
    from: w.from.toISOString(),
    to: w.to.toISOString(),
    period: q.period,
    rows: data.map((r) => {
      const cohortSize = Number(r.size);
      const activeUsers = Number(r.active);
      return { cohort: r.cohort, cohortSize, offset: Number(r.offset), activeUsers, rate: cohortSize > 0 ? activeUsers / cohortSize : 0 };
    }),
  };
}
