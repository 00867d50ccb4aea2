import type { Runtime } from '../runtime/runtime.js';
import type { Fence } from '../leases/single-active.js';
import { ProjectionRunner } from '../projection/runner.js';
import { projectionsFor } from './projections.js';

export interface ProjectorService {
  /** One per projection (each running every shard); /healthz reads their lag (services/projection/health.ts). */
  runners: ProjectionRunner[];
  stop(): Promise<void>;
}

/** Starts every Postgres projection of the platform. */
export async function startProjector(runtime: Runtime, options: { fence?: Fence } = {}): Promise<ProjectorService> {
  const { maxDeliveries, retryDelayMs } = runtime.config.projector;
  const runners = projectionsFor(runtime.subjects).map(
    (p) => new ProjectionRunner(runtime, p, { maxDeliveries, retryDelayMs, ...(options.fence ? { fence: options.fence } : {}) }),
  );
  for (const r of runners) await r.start();
  runtime.log.info('projector started', { projections: runners.flatMap((r) => r.shards.map((s) => s.consumerName)) });
  return {
    runners,
    async stop() {
      await Promise.all(runners.map((r) => r.stop()));
    },
  };
}
