import type { z } from 'zod';
import {
  type ActiveUsersReport,
  type ActiveUsersReportQuery,
  type AnalyticsReport,
  type MessagesReport,
  type MessagesReportQuery,
  type ReportName,
  ReportQueries,
  type TopConversationsReport,
  type TopConversationsReportQuery,
} from '../../contracts/index.js';
import { fromZodError } from '../runtime/errors.js';
import { busiestHoursReport, conversationKindsReport } from './distribution-reports.js';
import { latencyReport } from './latency-report.js';
import { chTime, isoSeconds, resolveWindow, rows, type ReportContext, type Window } from './report-sql.js';
import { retentionReport } from './retention-report.js';

/**
 * The standard reports (docs/analytics.md), read from the rollups the
 * materialized views maintain. Shared by the gateway's HTTP endpoints and
 * the CLI when it opens ClickHouse directly. Every query binds its values as
 * parameters; only the database name (validated by the config) and column
 * names chosen here are spliced into the SQL.
 */

const windowParams = (w: Window) => ({ from: chTime(w.from), to: chTime(w.to) });
const windowBody = (w: Window) => ({ from: w.from.toISOString(), to: w.to.toISOString() });

async function messagesReport(ctx: ReportContext, q: z.infer<typeof MessagesReportQuery>, w: Window): Promise<MessagesReport> {
  const col = q.granularity;
  const data = await rows<{ t: string; m: string; c: string; b: string; a: string }>(
    ctx,
    `SELECT toUnixTimestamp(${col}) AS t, sum(messages) AS m, sum(text_chars) AS c, sum(text_bytes) AS b, sum(attachments) AS a
     FROM {db}.messages_by_${col}
     WHERE ${col} >= {from:DateTime64(3, 'UTC')} AND ${col} < {to:DateTime64(3, 'UTC')}
       ${q.conversationId ? 'AND conversation_id = {conv:String}' : ''}
     GROUP BY ${col} ORDER BY ${col} LIMIT {limit:UInt32}`,
    { ...windowParams(w), conv: q.conversationId ?? '', limit: q.limit },
  );
  return {
    report: 'messages',
    ...windowBody(w),
    granularity: q.granularity,
    conversationId: q.conversationId ?? null,
    rows: data.map((r) => ({ bucket: isoSeconds(r.t), messages: Number(r.m), textChars: Number(r.c), textBytes: Number(r.b), attachments: Number(r.a) })),
  };
}

const PERIOD_OF_DAY = { day: 'day', week: 'toMonday(day)', month: 'toStartOfMonth(day)' } as const;

async function activeUsersReport(ctx: ReportContext, q: z.infer<typeof ActiveUsersReportQuery>, w: Window): Promise<ActiveUsersReport> {
  // Days touching the window count whole: activity is recorded per day.
  const data = await rows<{ p: string; u: string }>(
    ctx,
    `SELECT toString(${PERIOD_OF_DAY[q.period]}) AS p, uniqExact(user_id) AS u
     FROM {db}.active_users_daily
     WHERE day >= toDate({from:DateTime64(3, 'UTC')}) AND day <= toDate({to:DateTime64(3, 'UTC')} - INTERVAL 1 MILLISECOND)
     GROUP BY p ORDER BY p`,
    windowParams(w),
  );
  return { report: 'active-users', ...windowBody(w), period: q.period, rows: data.map((r) => ({ period: r.p, activeUsers: Number(r.u) })) };
}

async function topConversationsReport(ctx: ReportContext, q: z.infer<typeof TopConversationsReportQuery>, w: Window): Promise<TopConversationsReport> {
  const data = await rows<{ id: string; m: string; b: string }>(
    ctx,
    `SELECT conversation_id AS id, sum(messages) AS m, sum(text_bytes) AS b
     FROM {db}.messages_by_minute
     WHERE minute >= {from:DateTime64(3, 'UTC')} AND minute < {to:DateTime64(3, 'UTC')}
     GROUP BY conversation_id ORDER BY m DESC, conversation_id ASC LIMIT {k:UInt32}`,
    { ...windowParams(w), k: q.k },
  );
  return {
    report: 'top-conversations',
    ...windowBody(w),
    k: q.k,
    rows: data.map((r, i) => ({ rank: i + 1, conversationId: r.id, messages: Number(r.m), textBytes: Number(r.b) })),
  };
}

export type { ReportContext } from './report-sql.js';

/** Validates a report's query parameters against its contract (unknown parameters are rejected). */
export function parseReportQuery(name: ReportName, params: Record<string, string>): unknown {
  const parsed = ReportQueries[name].safeParse(params);
  if (!parsed.success) throw fromZodError('invalid_request', `invalid ${name} report query`, parsed.error);
  return parsed.data;
}

/** Runs a standard report; `query` must come from `parseReportQuery(name, ...)`. */
export async function runReport(ctx: ReportContext, name: ReportName, query: unknown): Promise<AnalyticsReport> {
  const q = query as { from?: Date; to?: Date };
  const w = resolveWindow(q, ctx.now?.() ?? new Date());
  switch (name) {
    case 'messages':
      return messagesReport(ctx, query as z.infer<typeof MessagesReportQuery>, w);
    case 'active-users':
      return activeUsersReport(ctx, query as z.infer<typeof ActiveUsersReportQuery>, w);
    case 'top-conversations':
      return topConversationsReport(ctx, query as z.infer<typeof TopConversationsReportQuery>, w);
    case 'latency':
      return latencyReport(ctx, query as z.infer<(typeof ReportQueries)['latency']>, w);
    case 'retention':
      return retentionReport(ctx, query as z.infer<(typeof ReportQueries)['retention']>, w);
    case 'conversation-kinds':
      return conversationKindsReport(ctx, query as z.infer<(typeof ReportQueries)['conversation-kinds']>, w);
    case 'busiest-hours':
      return busiestHoursReport(ctx, query as z.infer<(typeof ReportQueries)['busiest-hours']>, w);
  }
}
