import { z } from 'zod';
import { ConversationId } from './ids.js';

/**
 * Analytics contracts: the delivery timing gateways publish, and the HTTP
 * bodies of `/v1/analytics/*` (docs/analytics.md). Analytics holds ids,
 * sizes, counts and timings only, never message text.
 */

/**
 * Published on core NATS (`<ns>.metrics.delivery`, best effort) by a gateway
 * for each message event it fans out to its local sockets, as JSON arrays of
 * these records (one message per gateway per 100 ms); readers accept a lone
 * record too.
 */
export const DeliveryTiming = z.strictObject({
  /** Stream sequence of the message event. */
  seq: z.number().int().positive(),
  conversationId: ConversationId,
  /** The event's `at`: when the message was accepted (writer's clock, ms). */
  at: z.number().int().nonnegative(),
  /** When the gateway handed the frame to its sockets (gateway's clock, ms). */
  deliveredAt: z.number().int().nonnegative(),
  /** Local sockets subscribed to the conversation, when the gateway knows it cheaply. */
  recipients: z.number().int().nonnegative().optional(),
});
export type DeliveryTiming = z.infer<typeof DeliveryTiming>;

/** An instant in a query string: ISO 8601 date-time with offset, or a plain date (midnight UTC). */
const Instant = z.union([z.iso.datetime({ offset: true }), z.iso.date()]).transform((s) => new Date(s.length === 10 ? `${s}T00:00:00Z` : s));

/** Every report covers the half-open window [from, to). Defaults: the 7 days up to now. */
const Window = { from: Instant.optional(), to: Instant.optional() };

export const Granularity = z.enum(['minute', 'hour', 'day']);
export type Granularity = z.infer<typeof Granularity>;

export const ReportName = z.enum(['messages', 'active-users', 'latency', 'top-conversations', 'retention', 'conversation-kinds', 'busiest-hours']);
export type ReportName = z.infer<typeof ReportName>;

/** GET /v1/analytics/reports/messages: messages per bucket, for one conversation or all. */
export const MessagesReportQuery = z.strictObject({
  ...Window,
  granularity: Granularity.default('hour'),
  conversationId: ConversationId.optional(),
  limit: z.coerce.number().int().min(1).max(100_000).default(10_000),
});
/** GET /v1/analytics/reports/active-users: distinct active users per calendar day, week (Monday) or month. */
export const ActiveUsersReportQuery = z.strictObject({ ...Window, period: z.enum(['day', 'week', 'month']).default('day') });
/** GET /v1/analytics/reports/latency: send-to-deliver percentiles per bucket, and a histogram of the window. */
export const LatencyReportQuery = z.strictObject({ ...Window, granularity: Granularity.default('hour') });
/** GET /v1/analytics/reports/top-conversations: the k conversations with the most messages in the window (minute precision). */
export const TopConversationsReportQuery = z.strictObject({ ...Window, k: z.coerce.number().int().min(1).max(1000).default(10) });
/** GET /v1/analytics/reports/retention: users by cohort (period of first activity in the window) and periods since. */
export const RetentionReportQuery = z.strictObject({
  ...Window,
  period: z.enum(['day', 'week']).default('week'),
  offsets: z.coerce.number().int().min(1).max(52).default(8),
});

/** GET /v1/analytics/reports/conversation-kinds: messages in the window by the kind of their conversation (minute precision). */
export const ConversationKindsReportQuery = z.strictObject({ ...Window });
/** GET /v1/analytics/reports/busiest-hours: messages in the window by hour of the day (UTC), or by weekday and hour. */
export const BusiestHoursReportQuery = z.strictObject({ ...Window, by: z.enum(['hour', 'weekday-hour']).default('hour') });

export const ReportQueries = {
  messages: MessagesReportQuery,
  'active-users': ActiveUsersReportQuery,
  latency: LatencyReportQuery,
  'top-conversations': TopConversationsReportQuery,
  retention: RetentionReportQuery,
  'conversation-kinds': ConversationKindsReportQuery,
  'busiest-hours': BusiestHoursReportQuery,
} as const satisfies Record<ReportName, z.ZodType>;

const count = z.number().int().nonnegative();
/** ISO 8601 UTC: a bucket's start, or a period's first day (`YYYY-MM-DD`). */
const IsoTime = z.string();
const ReportWindow = { from: IsoTime, to: IsoTime };

export const MessagesReport = z.strictObject({
  report: z.literal('messages'),
  ...ReportWindow,
  granularity: Granularity,
  conversationId: ConversationId.nullable(),
  rows: z.array(z.strictObject({ bucket: IsoTime, messages: count, textChars: count, textBytes: count, attachments: count })),
});
export type MessagesReport = z.infer<typeof MessagesReport>;

export const ActiveUsersReport = z.strictObject({
  report: z.literal('active-users'),
  ...ReportWindow,
  period: z.enum(['day', 'week', 'month']),
  rows: z.array(z.strictObject({ period: IsoTime, activeUsers: count })),
});
export type ActiveUsersReport = z.infer<typeof ActiveUsersReport>;

const Percentiles = { deliveries: count, p50Ms: count, p90Ms: count, p99Ms: count, p999Ms: count, maxMs: count };

export const LatencyReport = z.strictObject({
  report: z.literal('latency'),
  ...ReportWindow,
  granularity: Granularity,
  total: z.strictObject(Percentiles),
  rows: z.array(z.strictObject({ bucket: IsoTime, ...Percentiles })),
  /** Deliveries with latency <= leMs (and above the previous bucket); leMs null is the overflow bucket. */
  histogram: z.array(z.strictObject({ leMs: count.nullable(), deliveries: count })),
});
export type LatencyReport = z.infer<typeof LatencyReport>;

export const TopConversationsReport = z.strictObject({
  report: z.literal('top-conversations'),
  ...ReportWindow,
  k: count,
  rows: z.array(z.strictObject({ rank: count, conversationId: z.string(), messages: count, textBytes: count })),
});
export type TopConversationsReport = z.infer<typeof TopConversationsReport>;

export const RetentionReport = z.strictObject({
  report: z.literal('retention'),
  ...ReportWindow,
  period: z.enum(['day', 'week']),
  rows: z.array(
    z.strictObject({
      cohort: IsoTime,
      cohortSize: count,
      /** Periods since the cohort's period (0 = the cohort period itself). */
      offset: count,
      activeUsers: count,
      /** activeUsers / cohortSize. */
      rate: z.number().min(0).max(1),
    }),
  ),
});
export type RetentionReport = z.infer<typeof RetentionReport>;

export const ConversationKindsReport = z.strictObject({
  report: z.literal('conversation-kinds'),
  ...ReportWindow,
  rows: z.array(
    z.strictObject({
      /** `direct`, `group`, `channel`; `unknown` for conversations whose creation is not in the analytics tables (older than the log). */
      kind: z.string(),
      /** Conversations of this kind with at least one message in the window. */
      conversations: count,
      messages: count,
      textBytes: count,
    }),
  ),
});
export type ConversationKindsReport = z.infer<typeof ConversationKindsReport>;

export const BusiestHoursReport = z.strictObject({
  report: z.literal('busiest-hours'),
  ...ReportWindow,
  by: z.enum(['hour', 'weekday-hour']),
  /** Every hour (24 rows), or every weekday and hour (168), quiet ones with 0 messages. */
  rows: z.array(
    z.strictObject({
      /** ISO weekday, 1 = Monday … 7 = Sunday; null with `by=hour`. */
      weekday: z.number().int().min(1).max(7).nullable(),
      /** Hour of the day, UTC. */
      hour: z.number().int().min(0).max(23),
      messages: count,
    }),
  ),
});
export type BusiestHoursReport = z.infer<typeof BusiestHoursReport>;

export type AnalyticsReport =
  | MessagesReport
  | ActiveUsersReport
  | LatencyReport
  | TopConversationsReport
  | RetentionReport
  | ConversationKindsReport
  | BusiestHoursReport;

/** POST /v1/analytics/sql: one read-only statement (SELECT with WITH/UNION, EXPLAIN, DESCRIBE TABLE, SHOW TABLES) on the analytics tables (docs/analytics.md). */
export const SqlRequest = z.strictObject({
  query: z.string().min(1).max(100_000),
  /** Rows returned at most; the answer says whether more existed. */
  maxRows: z.number().int().min(1).max(100_000).default(10_000),
});
export type SqlRequest = z.infer<typeof SqlRequest>;

export const SqlResponse = z.strictObject({
  columns: z.array(z.strictObject({ name: z.string(), type: z.string() })),
  /** One array per row, in column order; 64-bit integers arrive as strings. */
  rows: z.array(z.array(z.unknown())),
  rowCount: count,
  truncated: z.boolean(),
  elapsedMs: z.number().nonnegative(),
});
export type SqlResponse = z.infer<typeof SqlResponse>;
