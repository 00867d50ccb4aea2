import { createHash, timingSafeEqual } from 'node:crypto';
import { ReportName, SqlRequest, type AnalyticsReport, type SqlResponse } from '../../../contracts/index.js';
import { parseReportQuery, runReport } from '../../analytics-sql/reports.js';
import { runReadOnlySql } from '../../analytics-sql/sql.js';
import { AppError } from '../../runtime/errors.js';
import type { Runtime } from '../../runtime/runtime.js';
import { parseBody } from './json.js';
import type { HttpContext, HttpRouter } from './router.js';

/**
 * Analytics over HTTP (docs/analytics.md): the standard reports and one
 * read-only SQL statement at a time, both on the runtime's read-only
 * ClickHouse session. With embedded chDB the platform process owns the data
 * directory, so this is also how the CLI reaches it while the platform runs.
 *
 * Access: with ANALYTICS_ADMIN_TOKEN set, `Authorization: Bearer <token>` is
 * required; without it the endpoints are open only in development (dev
 * tokens on, where anyone can mint a user token anyway) and refused
 * otherwise. User tokens never grant access: reports span every user.
 */

const digest = (s: string) => createHash('sha256').update(s).digest();

function adminGuard(runtime: Runtime): (ctx: HttpContext) => void {
  const token = runtime.config.analytics.adminToken;
  if (token) {
    const expected = digest(token);
    return (ctx) => {
      const given = ctx.authorization.startsWith('Bearer ') ? ctx.authorization.slice(7) : '';
      // Compare digests: equal lengths, and no timing hint about the token.
      if (!given || !timingSafeEqual(digest(given), expected)) throw new AppError('unauthenticated', 'send Authorization: Bearer <ANALYTICS_ADMIN_TOKEN>');
    };
  }
  if (runtime.config.auth.devTokens) return () => undefined;
  return () => {
    throw new AppError('forbidden', 'analytics endpoints are disabled: set ANALYTICS_ADMIN_TOKEN to enable them');
  };
}

export function registerAnalyticsRoutes(router: HttpRouter, runtime: Runtime): void {
  const guard = adminGuard(runtime);
  const ctx = { client: runtime.clickhouseReadOnly, database: runtime.config.clickhouse.database };

  router.route('get', '/v1/analytics/reports/:name', async (http) => {
    guard(http);
    const name = ReportName.safeParse(http.params[0]);
    if (!name.success) throw new AppError('not_found', `no such report; reports: ${ReportName.options.join(', ')}`);
    const query = parseReportQuery(name.data, Object.fromEntries(http.query));
    const body: AnalyticsReport = await runReport(ctx, name.data, query);
    return { status: 200, body };
  });

  router.route('post', '/v1/analytics/sql', async (http) => {
    guard(http);
    const request = parseBody(http, SqlRequest);
    // The same check as the CLI's direct path: sql-guard/, on ClickHouse's parse tree.
    const body: SqlResponse = await runReadOnlySql(runtime.clickhouseReadOnly, request, runtime.config.clickhouse.database);
    return { status: 200, body };
  });
}
