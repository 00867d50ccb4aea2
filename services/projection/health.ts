import type { HealthCheck } from '../observability/health.js';
import type { ProjectionRunner } from './runner.js';

type Checked = Pick<ProjectionRunner, 'projection' | 'lag'> & Partial<Pick<ProjectionRunner, 'lagByShard'>>;

/**
 * The /healthz `projector` check over every projection runner of the
 * process (the read model's and the notifier's alike): down while any of
 * them lags more than `maxLag` events (summed over its shards). The detail
 * names each one's lag, e.g. `read-model lag 0, notifier lag 3`; with
 * several shards, each shard's lag follows: `read-model lag 3 [1, 2]`.
 */
export function projectorLagCheck(runners: readonly Checked[], maxLag: number): HealthCheck {
  return async () => {
    const lags = await Promise.all(
      runners.map(async (r) => {
        const shards = r.lagByShard ? await r.lagByShard() : [await r.lag()];
        return { name: r.projection.name, lag: shards.reduce((a, b) => a + b, 0), shards };
      }),
    );
    const detail = lags.map((l) => `${l.name} lag ${l.lag}${l.shards.length > 1 ? ` [${l.shards.join(', ')}]` : ''}`).join(', ');
    if (lags.some((l) => l.lag > maxLag)) throw new Error(`${detail} (limit ${maxLag})`);
    return detail;
  };
}
