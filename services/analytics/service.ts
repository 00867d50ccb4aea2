import type { Runtime } from '../shared/runtime.js';
import { DeliveryIngester, type DeliveryIngesterOptions } from './deliveries.js';
import { AnalyticsProjector, type AnalyticsProjectorOptions } from './projector.js';

export interface AnalyticsService {
  projector: AnalyticsProjector;
  deliveries: DeliveryIngester;
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
  return {
    projector,
    deliveries,
    async stop() {
      await Promise.all([projector.stop(), deliveries.stop()]);
    },
  };
}
