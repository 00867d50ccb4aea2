import type { HealthCheck } from '../shared/health.js';
import type { Runtime } from '../shared/runtime.js';
import { projectionsFor } from './projections.js';
import { ProjectionRunner } from './runner.js';

export interface ProjectorService {
  runners: ProjectionRunner[];
  /** For /healthz: fails when any projector lags more than `projector.maxHealthyLag` events; the lags are in the detail. */
  healthCheck: HealthCheck;
  stop(): Promise<void>;
}

/** Starts every Postgres projection of the platform. */
export async function startProjector(runtime: Runtime): Promise<ProjectorService> {
  const { maxDeliveries, retryDelayMs, maxHealthyLag } = runtime.config.projector;
  const runners = projectionsFor(runtime.subjects).map((p) => new ProjectionRunner(runtime, p, { maxDeliveries, retryDelayMs }));
  for (const r of runners) await r.start();
  runtime.log.info('projector started', { projections: runners.map((r) => r.consumerName) });
  return {
    runners,
    async healthCheck() {
      const lags = await Promise.all(runners.map(async (r) => ({ name: r.projection.name, lag: await r.lag() })));
      const detail = lags.map((l) => `${l.name} lag ${l.lag}`).join(', ');
      if (lags.some((l) => l.lag > maxHealthyLag)) throw new Error(`${detail} (limit ${maxHealthyLag})`);
      return detail;
    },
    async stop() {
      await Promise.all(runners.map((r) => r.stop()));
    },
  };
}
