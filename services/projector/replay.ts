import { DeliverPolicy } from '@nats-io/jetstream';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeEvent } from '../event-log/event-store.js';
import { applyDeliveries, type ApplyResult } from '../projection/apply.js';
import { ApplyQueue } from './apply-queue.js';
import { CheckpointMoved, inSchema, readCheckpoint } from '../projection/checkpoint.js';
import { describeFailure, isEnvironmentError } from '../projection/failure.js';
import { consumerFilter, type Delivery, type Projection, type ProjectorDeps } from '../projection/projection.js';

export interface ReplayOptions {
  /** Tables (and checkpoint) to write: a rebuild's shadow schema. */
  schema?: string;
  /** The shard replayed (its stream, checkpoint row and parked events). Default 0. */
  shard?: number;
  /** Stop after this sequence of the shard's stream; default: its last sequence when the replay starts. */
  untilSeq?: number;
  /**
   * Only the shard's conversation subjects, or only its user subjects (a rebuild over several shards: see rebuild.ts).
   * The checkpoint then only says how far this kind of subject is replayed.
   */
  only?: 'conv' | 'user';
  /** Events per transaction. Default 10000 (measured: fewer, larger transactions replay faster; see docs/operations.md). */
  batchSize?: number;
  maxDeliveries: number;
  /** Pause before retrying a failed batch. Default 100 ms. */
  retryDelayMs?: number;
  /** Called after every committed batch. */
  onProgress?: (p: { checkpoint: number; applied: number }) => void;
}

export interface ReplayResult {
  checkpoint: number;
  applied: number;
  parked: number;
  held: number;
}

const MAX_TRANSIENT_ATTEMPTS = 20;
/** Decoded batches that may wait behind the one in Postgres (bounds memory; decoding stops while they wait). */
const MAX_BATCHES_AHEAD = 2;
const YIELD_EVERY_MS = 1;

/**
 * Decodes (and lets the projection prepare) each event on receipt: that CPU
 * work overlaps with the previous batch's time in Postgres, in slices small
 * enough that the event loop keeps feeding that batch's statements. A
 * failure is left for apply to park.
 */
function predecoded(d: Delivery, projection: Projection): Delivery {
  try {
    const event = decodeEvent(d.data);
    projection.prepare?.([{ seq: d.seq, subject: d.subject, event }]);
    d.event = event;
    return d;
  } catch {
    return d;
  }
}

/**
 * Folds one shard of the log into a projection's tables from that shard's
 * checkpoint on, with an
 * ordered consumer: ephemeral, flow-controlled, no acks, strictly in order.
 * It only reads: nothing is appended to the log or published anywhere, so a
 * replay has no side effects beyond the tables it writes.
 *
 * Failures follow the live runner's rules (shared/projection/apply.ts), with retries in
 * process: an event failing `maxDeliveries` times is parked in the schema's
 * own parked table.
 */
export async function replay(deps: ProjectorDeps, projection: Projection, options: ReplayOptions): Promise<ReplayResult> {
  const shard = deps.shards[options.shard ?? 0];
  if (!shard) throw new RangeError(`no shard ${options.shard} (the log has ${deps.shards.length})`);
  const batchSize = options.batchSize ?? 10_000;
  const retryDelayMs = options.retryDelayMs ?? 100;
  const start = await inSchema(deps.db, options.schema, (trx) => readCheckpoint(trx, projection.name, shard.shard));
  const result: ReplayResult = { checkpoint: start.seq, applied: 0, parked: 0, held: 0 };
  const until = options.untilSeq ?? (await deps.nats.jsm.streams.info(shard.stream)).state.last_seq;
  if (until <= start.seq) return result;

  const filter = options.only ? [`${deps.subjects.storedPrefix(shard.shard)}${options.only}.>`] : consumerFilter(projection, deps.subjects, shard.shard);
  const consumer = await deps.nats.js.consumers.get(shard.stream, {
    ...(filter.length > 0 ? { filter_subjects: filter } : {}),
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: start.seq + 1,
  });
  if ((await consumer.info()).num_pending === 0) return result;

  const applyWithRetries = async (batch: Delivery[]): Promise<void> => {
    let rest = batch;
    for (let transient = 0; rest.length > 0; ) {
      let r: ApplyResult;
      try {
        r = await applyDeliveries(deps, projection, rest, {
          shard: shard.shard,
          schema: options.schema,
          expectedCheckpoint: result.checkpoint,
          maxDeliveries: options.maxDeliveries,
        });
      } catch (err) {
        if (err instanceof CheckpointMoved) throw err;
        if (isEnvironmentError(err))
          throw new Error(`replay of ${projection.name} stopped: ${describeFailure(err)} (is every table the projection writes listed in its tables?)`, {
            cause: err,
          });
        if (++transient >= MAX_TRANSIENT_ATTEMPTS) throw err;
        await sleep(retryDelayMs * transient);
        continue;
      }
      result.checkpoint = r.checkpoint;
      result.applied += r.applied;
      result.parked += r.parked.length;
      result.held += r.held;
      rest = rest.slice(r.handled).map((d) => ({ ...d, deliveries: d.deliveries + 1 }));
      if (rest.length > 0) await sleep(retryDelayMs);
    }
    options.onProgress?.({ checkpoint: result.checkpoint, applied: result.applied });
  };

  const messages = await consumer.consume({ max_messages: batchSize * 2 });
  const queue = new ApplyQueue(applyWithRetries, MAX_BATCHES_AHEAD);
  try {
    let batch: Delivery[] = [];
    let sliceStarted = performance.now();
    for await (const m of messages) {
      if (m.seq > until) break;
      // Buffered messages come through microtasks only: yield every millisecond or so, so that the batch in
      // Postgres gets each reply handled (and its next statement sent) promptly while this loop decodes.
      if (performance.now() - sliceStarted >= YIELD_EVERY_MS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        sliceStarted = performance.now();
      }
      batch.push(predecoded({ seq: m.seq, subject: m.subject, data: m.data, deliveries: 1 }, projection));
      const last = m.seq >= until || m.info.pending === 0;
      if (batch.length >= batchSize || last) {
        await queue.push(batch);
        batch = [];
      }
      if (last) break;
    }
    if (batch.length > 0) await queue.push(batch);
    await queue.drained();
  } finally {
    await queue.drained().catch(() => undefined);
    await messages.close().catch(() => undefined);
  }
  return result;
}
