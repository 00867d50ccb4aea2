import { AckPolicy, DeliverPolicy, type ConsumerConfig, type JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from '../observability/logger.js';

export interface DurableSpec {
  stream: string;
  name: string;
  filterSubjects: string[];
  maxAckPending: number;
}

function isNotFound(err: unknown): boolean {
  return (err as { code?: number })?.code === 10014 || /consumer not found/i.test(String((err as Error)?.message ?? err));
}

/**
 * Makes the durable consumer agree with the checkpoint, which is the truth:
 * created at `checkpoint + 1` when missing, and recreated there when it
 * could hand out events out of order (unacknowledged deliveries left by a
 * stopped or crashed runner would come back only after ack_wait, behind
 * newer ones), when it is ahead of the checkpoint (an operator reset it
 * back), when the projection's subjects or the ack policy changed, or when the runner asks
 * (`reposition`: one of its deliveries never reached it). Only one runner per
 * projection is expected to be running.
 */
export async function ensureDurable(
  jsm: JetStreamManager,
  spec: DurableSpec,
  checkpoint: number,
  log: Logger,
  options: { reposition?: boolean } = {},
): Promise<void> {
  let info;
  try {
    info = await jsm.consumers.info(spec.stream, spec.name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  if (info) {
    const filters = info.config.filter_subjects ?? (info.config.filter_subject ? [info.config.filter_subject] : []);
    const sameFilters = filters.length === spec.filterSubjects.length && filters.every((f) => spec.filterSubjects.includes(f));
    // A consumer made by an earlier version acks one by one; the ack policy cannot be changed in place.
    const samePolicy = info.config.ack_policy === AckPolicy.All;
    if (!options.reposition && sameFilters && samePolicy && info.num_ack_pending === 0 && info.ack_floor.stream_seq <= checkpoint) return;
    log.info('repositioning the projector consumer at its checkpoint', {
      consumer: spec.name,
      checkpoint,
      ackFloor: info.ack_floor.stream_seq,
      unacknowledged: info.num_ack_pending,
    });
    await jsm.consumers.delete(spec.stream, spec.name).catch((err) => {
      if (!isNotFound(err)) throw err;
    });
  }
  const config: Partial<ConsumerConfig> = {
    durable_name: spec.name,
    // Cumulative: the runner applies in log order and the checkpoint means "everything up to here is handled",
    // so acking a batch's last event says exactly that, in one ack instead of one per event (nats-server
    // handles every ack as a message). A naked event stays outstanding: acks never pass it (InOrderGate).
    ack_policy: AckPolicy.All,
    deliver_policy: checkpoint > 0 ? DeliverPolicy.StartSequence : DeliverPolicy.All,
    ...(checkpoint > 0 ? { opt_start_seq: checkpoint + 1 } : {}),
    ...(spec.filterSubjects.length > 0 ? { filter_subjects: spec.filterSubjects } : {}),
    max_ack_pending: spec.maxAckPending,
    // Parking is the projector's decision (it needs the reason and the entity), so the server never gives up on its own.
    max_deliver: -1,
    ack_wait: 30_000_000_000,
  };
  await jsm.consumers.add(spec.stream, config);
}

/** Events the consumer has not had acknowledged yet: still in the log plus delivered but unacknowledged. */
export async function consumerLag(jsm: JetStreamManager, stream: string, name: string): Promise<number> {
  const info = await jsm.consumers.info(stream, name);
  return info.num_pending + info.num_ack_pending;
}

export async function deleteDurable(jsm: JetStreamManager, stream: string, name: string): Promise<boolean> {
  try {
    return await jsm.consumers.delete(stream, name);
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}
