import type { ShardInfo } from '../event-log/streams.js';
import { openParkedCounts } from './parked-counts.js';
import { projectorMetrics, projectorShardGauges, type ProjectorMetrics } from './metrics.js';
import type { Projection, ProjectorDeps } from './projection.js';
import { ShardRunner, type RunnerOptions } from './shard-runner.js';
import { startAll } from '../concurrency/start-all.js';

export { projectorConsumerName, receivedNotYielded, type RunnerOptions } from './shard-runner.js';

/**
 * Runs a projection over every shard of the log (STREAM_SHARDS): one
 * ShardRunner per shard stream, each with its own durable consumer,
 * checkpoint row and parked events, applying that shard's events in order.
 * Shards are independent: an entity lives on one shard, so its events, and
 * the per-entity sequences the projections keep for idempotence, are all of
 * one shard. One process runs every shard (the role's single-active lease
 * covers them all, so a takeover takes over every shard).
 *
 * With one shard this is exactly the single runner it replaced: the same
 * consumer name and checkpoint row (shard 0).
 */
export class ProjectionRunner {
  readonly shards: readonly ShardRunner[];
  private readonly metrics: ProjectorMetrics;
  private collecting = false;

  constructor(
    private readonly deps: ProjectorDeps,
    readonly projection: Projection,
    options: RunnerOptions = {},
  ) {
    this.metrics = projectorMetrics(deps.metrics, projection.name);
    this.shards = deps.shards.map((shard: ShardInfo) => new ShardRunner(deps, projection, shard, this.metrics, options));
  }

  /** Shard 0's durable consumer (the one-shard name); shard k's is `shards[k].consumerName`. */
  get consumerName(): string {
    return this.shards[0]!.consumerName;
  }

  /** Shard 0's checkpoint: the checkpoint of a one-shard deployment. Every shard's: `checkpoints`. */
  get checkpoint(): number {
    return this.shards[0]!.checkpoint;
  }

  /** The checkpoint of each shard, index k for shard k. */
  get checkpoints(): number[] {
    return this.shards.map((s) => s.checkpoint);
  }

  /** Starts every shard; a shard that cannot start (a recreated stream) stops the ones already started. */
  async start(): Promise<void> {
    await startAll(this.shards);
    // Registered once and kept while stopped: a stopped projector's lag is exactly what should show.
    if (!this.collecting) this.metrics.registry.onCollect(() => this.collect());
    this.collecting = true;
  }

  async stop(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.stop()));
  }

  /** Events not yet handled, summed over the shards (from each consumer's state on the server). */
  async lag(): Promise<number> {
    return (await this.lagByShard()).reduce((a, b) => a + b, 0);
  }

  /** Each shard's lag, index k for shard k. */
  lagByShard(): Promise<number[]> {
    return Promise.all(this.shards.map((s) => s.lag()));
  }

  private async collect(): Promise<void> {
    const m = this.metrics;
    const name = this.projection.name;
    m.checkpoint.set(this.checkpoint);
    const open = await openParkedCounts(this.deps.db, name);
    for (const status of ['parked', 'held'] as const) m.parkedOpen.set({ projector: name, status }, open[status]);
    const lags = await this.lagByShard();
    m.lag.set(lags.reduce((a, b) => a + b, 0));
    // Per shard only where there are several: a one-shard deployment keeps exactly its series.
    if (this.shards.length > 1) {
      const g = projectorShardGauges(m.registry);
      this.shards.forEach((s, k) => {
        g.checkpoint.set({ projector: name, shard: String(k) }, s.checkpoint);
        g.lag.set({ projector: name, shard: String(k) }, lags[k]!);
      });
    }
  }
}
