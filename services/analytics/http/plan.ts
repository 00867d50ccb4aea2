import type { Config } from '../../runtime/config.js';
import { isLoopbackHost } from '../../runtime/exposure.js';

/**
 * Whether the ClickHouse-compatible endpoint runs, where, and with which
 * credential. Pure (a table of configurations drives it in the tests).
 *
 * - Off with `ANALYTICS_HTTP_PORT=off`, and with CLICKHOUSE_URL: analysts
 *   then use the ClickHouse server itself (docs/analytics.md).
 * - The credential is ANALYTICS_HTTP_USER with ANALYTICS_HTTP_PASSWORD, or
 *   else ANALYTICS_ADMIN_TOKEN (the analysts' key of POST /v1/analytics/sql;
 *   both are at least 16 characters).
 * - Without either, the development default, user `analyst` with an empty
 *   password, is accepted only while development defaults are on (dev
 *   tokens) and the endpoint listens on loopback, like the gateway's
 *   (services/runtime/exposure.ts): nothing but this machine can connect.
 * - Otherwise it cannot run: with the port left at its default it stays off
 *   (a production process does not fail over a convenience it was never
 *   asked for; the reason is logged); with ANALYTICS_HTTP_PORT set the start
 *   is refused, since the operator asked for something unsafe.
 */
export type AnalyticsHttpPlan =
  | { action: 'off'; reason: string; warn: boolean }
  | { action: 'start'; host: string; port: number; user: string; password: string; devDefault: boolean }
  | { action: 'refuse'; message: string };

export interface AnalyticsHttpPlanInput {
  port: number | null;
  portExplicit: boolean;
  host: string;
  user: string;
  password: string | undefined;
  clickhouseUrl: string | undefined;
  devTokens: boolean;
}

export function analyticsHttpPlanInput(config: Config): AnalyticsHttpPlanInput {
  return { ...config.analytics.http, clickhouseUrl: config.clickhouse.url, devTokens: config.auth.devTokens };
}

export function planAnalyticsHttp(input: AnalyticsHttpPlanInput): AnalyticsHttpPlan {
  if (input.port === null) return { action: 'off', reason: 'ANALYTICS_HTTP_PORT=off', warn: false };
  if (input.clickhouseUrl) {
    return {
      action: 'off',
      reason: 'CLICKHOUSE_URL is set: analysts connect to the ClickHouse server with a read-only user of their own (docs/analytics.md)',
      warn: input.portExplicit,
    };
  }
  const base = { host: input.host, port: input.port, user: input.user };
  if (input.password) return { action: 'start', ...base, password: input.password, devDefault: false };
  if (input.devTokens && isLoopbackHost(input.host)) return { action: 'start', ...base, password: '', devDefault: true };
  const why = isLoopbackHost(input.host)
    ? 'development defaults are off (AUTH_DEV_TOKENS) and no analyst password is set'
    : `ANALYTICS_HTTP_HOST=${JSON.stringify(input.host)} is not a loopback address and no analyst password is set`;
  const fix = 'set ANALYTICS_HTTP_PASSWORD (16+ characters) or ANALYTICS_ADMIN_TOKEN';
  if (input.portExplicit) return { action: 'refuse', message: `refusing to start the analytics HTTP endpoint: ${why}; ${fix}, or ANALYTICS_HTTP_PORT=off` };
  return { action: 'off', reason: `${why}; ${fix} to serve analysts on port ${input.port}`, warn: false };
}

/** Thrown at start when the configuration asks for an endpoint that cannot be served safely. */
export class AnalyticsHttpRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AnalyticsHttpRefused';
  }
}

/** Throws AnalyticsHttpRefused where the plan is to refuse; for processes that run the analytics role. */
export function enforceAnalyticsHttp(config: Config): AnalyticsHttpPlan {
  const plan = planAnalyticsHttp(analyticsHttpPlanInput(config));
  if (plan.action === 'refuse') throw new AnalyticsHttpRefused(plan.message);
  return plan;
}
