import { AckPolicy, DeliverPolicy, type ConsumerMessages } from '@nats-io/jetstream';
import type { MetricsRegistry } from '../observability/metrics.js';
import type { Runtime } from '../runtime/runtime.js';
import { LIVE_PULL_EXPIRES_MS } from '../event-log/live-pull.js';

/**
 * (Re)creates one of the analytics projector's durable consumers (one per
 * shard stream) so that it delivers the stream from `fromSeq`, in order, and starts consuming it. Any
 * consumer of that name is deleted first: its unacked deliveries from an
 * earlier run would come back only after ack_wait, behind newer events, and
 * the projector relies on log order. The checkpoint in ClickHouse, not the
 * consumer, is the truth about what has been ingested.
 */
export async function consumeLogFrom(runtime: Runtime, stream: string, name: string, fromSeq: number, maxBatch: number): Promise<ConsumerMessages> {
  const { jsm, js } = runtime.nats;
  await jsm.consumers.delete(stream, name).catch((err: unknown) => {
    if (!/consumer not found/i.test(String(err))) throw err;
  });
  await jsm.consumers.add(stream, {
    durable_name: name,
    description: 'analytics projector; recreated at each start from its checkpoint in ClickHouse',
    // Cumulative: batches land strictly in log order, so acking a batch's last event acks the batch.
    ack_policy: AckPolicy.All,
    deliver_policy: fromSeq > 1 ? DeliverPolicy.StartSequence : DeliverPolicy.All,
    ...(fromSeq > 1 ? { opt_start_seq: fromSeq } : {}),
    // No filter: the stream holds only event subjects, so none selects the same events, and a wildcard filter
    // (`<ns>.ev.>`) costs nats-server several times the CPU per delivered event (services/projection/projection.ts).
    // Room for one batch being inserted and the next being collected.
    max_ack_pending: maxBatch * 2,
    ack_wait: 60_000_000_000,
  });
  // Pulls smaller than a batch: the projector collects across pulls, and the client's buffer stays small.
  return (await js.consumers.get(stream, name)).consume({ max_messages: Math.min(maxBatch, 20_000), expires: LIVE_PULL_EXPIRES_MS });
}

export function projectorMetrics(metrics: MetricsRegistry) {
  return {
    events: metrics.counter('parley_analytics_events_total', 'Events inserted into ClickHouse by the analytics projector.'),
    failures: metrics.counter('parley_analytics_batch_failures_total', 'Analytics batch inserts that failed and were retried.'),
    // Per shard: sequences of different shard streams are not comparable.
    seq: metrics.gauge('parley_analytics_inserted_seq', "Sequence of the shard's stream up to which every event is in ClickHouse.", ['shard']),
  };
}
