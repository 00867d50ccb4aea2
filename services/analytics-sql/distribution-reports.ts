import type { z } from 'zod';
import type { BusiestHoursReport, BusiestHoursReportQuery, ConversationKindsReport, ConversationKindsReportQuery } from '../../contracts/index.js';
import { chTime, rows, type ReportContext, type Window } from './report-sql.js';

/**
 * Reports that split the window's messages by something other than time:
 * the kind of conversation, and the hour of the day (docs/analytics.md,
 * "Reports"). Read from the minute rollup, so the window is exact to the minute.
 */

const windowParams = (w: Window) => ({ from: chTime(w.from), to: chTime(w.to) });

export async function conversationKindsReport(
  ctx: ReportContext,
  _q: z.infer<typeof ConversationKindsReportQuery>,
  w: Window,
): Promise<ConversationKindsReport> {
  // The kind is on conversation.created only; a LEFT JOIN keeps conversations whose creation is gone (kind '').
  const data = await rows<{ kind: string; c: string; m: string; b: string }>(
    ctx,
    `SELECT if(k.kind = '', 'unknown', k.kind) AS kind, uniqExact(m.conversation_id) AS c, sum(m.messages) AS m, sum(m.text_bytes) AS b
     FROM {db}.messages_by_minute AS m
     LEFT JOIN (SELECT conversation_id, any(conversation_kind) AS kind FROM {db}.events WHERE type = 'conversation.created' GROUP BY conversation_id) AS k
       ON k.conversation_id = m.conversation_id
     WHERE m.minute >= {from:DateTime64(3, 'UTC')} AND m.minute < {to:DateTime64(3, 'UTC')}
     GROUP BY kind ORDER BY m DESC, kind ASC`,
    windowParams(w),
  );
  return {
    report: 'conversation-kinds',
    from: w.from.toISOString(),
    to: w.to.toISOString(),
    rows: data.map((r) => ({ kind: r.kind, conversations: Number(r.c), messages: Number(r.m), textBytes: Number(r.b) })),
  };
}

export async function busiestHoursReport(ctx: ReportContext, q: z.infer<typeof BusiestHoursReportQuery>, w: Window): Promise<BusiestHoursReport> {
  const byWeekday = q.by === 'weekday-hour';
  const data = await rows<{ d: number; h: number; m: string }>(
    ctx,
    `SELECT ${byWeekday ? 'toDayOfWeek(minute)' : '0'} AS d, toHour(minute) AS h, sum(messages) AS m
     FROM {db}.messages_by_minute
     WHERE minute >= {from:DateTime64(3, 'UTC')} AND minute < {to:DateTime64(3, 'UTC')}
     GROUP BY d, h`,
    windowParams(w),
  );
  const counts = new Map(data.map((r) => [`${Number(r.d)}:${Number(r.h)}`, Number(r.m)]));
  // Every slot, quiet ones as 0: a chart of the day has no gaps, and the row count is fixed.
  const days = byWeekday ? [1, 2, 3, 4, 5, 6, 7] : [0];
  const out = days.flatMap((d) => Array.from({ length: 24 }, (_, h) => ({ weekday: byWeekday ? d : null, hour: h, messages: counts.get(`${d}:${h}`) ?? 0 })));
  return { report: 'busiest-hours', from: w.from.toISOString(), to: w.to.toISOString(), by: q.by, rows: out };
}
