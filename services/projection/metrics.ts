import { MetricsRegistry } from '../observability/metrics.js';

/** Seconds, 5 ms to 10 min: a live projector stays in the first buckets, a rebuild or an outage in the last. */
const APPLY_DELAY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600];

/** A projector's series, bound to its name once (no label lookups per event). */
export function projectorMetrics(registry: MetricsRegistry | undefined, projector: string) {
  const r = registry ?? new MetricsRegistry();
  const events = r.counter(
    'parley_projector_events_total',
    'Events handled by a projector, by outcome (applied, parked, held, retried). rate() of applied is the projection rate.',
    ['projector', 'outcome'],
  );
  return {
    applied: events.labels({ projector, outcome: 'applied' }),
    parked: events.labels({ projector, outcome: 'parked' }),
    held: events.labels({ projector, outcome: 'held' }),
    retried: events.labels({ projector, outcome: 'retried' }),
    // From the log's store time (nats-server's clock, ms precision) to the batch's commit: how far behind the read model runs, in time.
    applyDelaySeconds: r
      .histogram(
        'parley_projector_apply_delay_seconds',
        "Time from an event's append to the log until the projector committed it (last event of each batch), by projector and role.",
        ['projector', 'role'],
        APPLY_DELAY_BUCKETS,
      )
      .labels({ projector, role: projector === 'notifier' ? 'notifier' : 'projector' }),
    batchSeconds: r.histogram('parley_projector_batch_seconds', 'Time to apply one batch and commit its checkpoint.', ['projector']).labels({ projector }),
    lag: r
      .gauge('parley_projector_lag_events', "Events in the log the projector has not handled yet (its consumer's pending plus unacknowledged).", ['projector'])
      .labels({ projector }),
    checkpoint: r
      .gauge('parley_projector_checkpoint_seq', 'Stream sequence up to which the projector has handled the log.', ['projector'])
      .labels({ projector }),
    parkedOpen: r.gauge(
      'parley_projector_parked_events',
      'Parked events waiting for an operator, by status (parked = failed, held = queued behind a parked event of the same entity).',
      ['projector', 'status'],
    ),
    registry: r,
  };
}

export type ProjectorMetrics = ReturnType<typeof projectorMetrics>;

/**
 * Per-shard checkpoint and lag, registered only by a projector running several shards (a one-shard deployment keeps
 * exactly its series): the summed lag and shard 0's checkpoint above say less once there are several streams.
 */
export function projectorShardGauges(registry: MetricsRegistry) {
  return {
    checkpoint: registry.gauge('parley_projector_shard_checkpoint_seq', "Stream sequence up to which the projector has handled the shard's stream.", [
      'projector',
      'shard',
    ]),
    lag: registry.gauge('parley_projector_shard_lag_events', "Events of the shard's stream the projector has not handled yet.", ['projector', 'shard']),
  };
}
