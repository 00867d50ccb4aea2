import type { Runtime } from '../shared/runtime.js';
import { readModelProjection } from './read-model.js';
import { ProjectionRunner } from './runner.js';

export interface ProjectorService {
  stop(): Promise<void>;
}

/** Starts every Postgres projection of the platform. */
export async function startProjector(runtime: Runtime): Promise<ProjectorService> {
  const runners = [new ProjectionRunner(runtime, readModelProjection(runtime.subjects))];
  for (const r of runners) await r.start();
  runtime.log.info('projector started', { projections: runners.map((r) => r.consumerName) });
  return {
    async stop() {
      await Promise.all(runners.map((r) => r.stop()));
    },
  };
}
