import type { Runtime } from '../runtime/runtime.js';
import { DeliveryIngester, type DeliveryIngesterOptions } from './deliveries.js';
import { startAnalyticsHttp, type AnalyticsHttpServer } from './http/server.js';
import { planAnalyticsHttp, analyticsHttpPlanInput } from './http/plan.js';
import { AnalyticsProjector, type AnalyticsProjectorOptions } from './projector.js';

export interface AnalyticsService {
  projector: AnalyticsProjector;
  deliveries: DeliveryIngester;
  /** The ClickHouse-compatible endpoint for analysts' tools, when it runs (http/plan.ts). */
  http: AnalyticsHttpServer | undefined;
  stop(): Promise<void>;
}

export interface AnalyticsOptions {
  projector?: AnalyticsProjectorOptions;
  deliveries?: DeliveryIngesterOptions;
}

/**
 * ClickHouse analytics (docs/analytics.md): the log projected into `events`
 * and its rollups, and the gateways' delivery timing into `deliveries`.
 * Runs once per deployment (it owns the analytics checkpoint); in embedded
 * mode it must share the process that owns chDB's data directory.
 */
export async function startAnalytics(runtime: Runtime, options: AnalyticsOptions = {}): Promise<AnalyticsService> {
  const maxDelayMs = runtime.config.analytics.flushMs;
  const projector = new AnalyticsProjector(runtime, { maxDelayMs, ...options.projector });
  const deliveries = new DeliveryIngester(runtime, { maxDelayMs, ...options.deliveries });
  deliveries.start();
  try {
    await projector.start();
  } catch (err) {
    await deliveries.stop();
    throw err;
  }
  const http = await startHttp(runtime);
  return {
    projector,
    deliveries,
    http,
    async stop() {
      await Promise.all([projector.stop(), deliveries.stop(), http?.stop()]);
    },
  };
}

/**
 * The endpoint runs with the active analytics role: in embedded mode that is
 * the process whose chDB holds the data. It is a convenience beside the
 * ingest: a port in use is logged (an error when ANALYTICS_HTTP_PORT was
 * set) and analytics runs on without it.
 */
async function startHttp(runtime: Runtime): Promise<AnalyticsHttpServer | undefined> {
  const log = runtime.log.child({ component: 'analytics-http' });
  const { config } = runtime;
  const plan = planAnalyticsHttp(analyticsHttpPlanInput(config));
  if (plan.action === 'refuse') {
    // ops/platform.ts refuses these before anything starts; here for callers that start analytics directly.
    log.error(plan.message);
    return undefined;
  }
  if (plan.action === 'off') {
    (plan.warn ? log.warn : log.info).call(log, `analytics HTTP endpoint off: ${plan.reason}`);
    return undefined;
  }
  try {
    const server = await startAnalyticsHttp({
      host: plan.host,
      port: plan.port,
      credentials: { user: plan.user, password: plan.password },
      database: config.clickhouse.database,
      client: runtime.clickhouseReadOnly,
      log,
    });
    log.info('analytics HTTP endpoint (ClickHouse-compatible) listening', { host: plan.host, port: server.port, user: plan.user, devDefault: plan.devDefault });
    return server;
  } catch (err) {
    const message = `analytics HTTP endpoint not started on ${plan.host}:${plan.port}: ${(err as Error).message}`;
    if (config.analytics.http.portExplicit) log.error(message, { err });
    else log.warn(message);
    return undefined;
  }
}
