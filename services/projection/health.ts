import type { HealthCheck } from '../observability/health.js';
import type { ProjectionRunner } from './runner.js';

/**
 * The /healthz `projector` check over every projection runner of the
 * process (the read model's and the notifier's alike): down while any of
 * them lags more than `maxLag` events. The detail names each one's lag,
 * e.g. `read-model lag 0, notifier lag 3`.
 */
export function projectorLagCheck(runners: readonly Pick<ProjectionRunner, 'projection' | 'lag'>[], maxLag: number): HealthCheck {
  return async () => {
    const lags = await Promise.all(runners.map(async (r) => ({ name: r.projection.name, lag: await r.lag() })));
    const detail = lags.map((l) => `${l.name} lag ${l.lag}`).join(', ');
    if (lags.some((l) => l.lag > maxLag)) throw new Error(`${detail} (limit ${maxLag})`);
    return detail;
  };
}
