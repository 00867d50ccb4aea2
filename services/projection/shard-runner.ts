import type { ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../observability/logger.js';
import { LeaseLost, type Fence } from '../leases/single-active.js';
import type { ShardInfo } from '../event-log/streams.js';
import { applyDeliveries } from './apply.js';
import { CheckpointMoved, ensureCheckpointRow, readCheckpoint } from './checkpoint.js';
import { consumerLag, ensureDurable } from './consumer.js';
import { DeliveryGap, DeliverySequence } from './delivery-sequence.js';
import { InOrderGate } from './in-order.js';
import type { ProjectorMetrics } from './metrics.js';
import { consumerFilter, type Projection, type ProjectorDeps } from './projection.js';
import { LIVE_PULL_EXPIRES_MS } from '../event-log/live-pull.js';

/**
 * Messages the client has received from the server and not yet handed to the
 * loop. Not `getPending()`: that also counts the status callbacks the
 * consumer queues between messages (heartbeats, pull bookkeeping) and, after
 * one, stays at least 1 until the next message arrives, so a loop waiting for
 * it to reach 0 would hold its last events until then.
 */
export function receivedNotYielded(messages: ConsumerMessages): number {
  return messages.getReceived() - messages.getProcessed();
}

/** How a projection runs; shared by every shard's runner (ProjectionRunner, runner.ts). */
export interface RunnerOptions {
  /** Largest batch applied in one transaction. Default 500. */
  batchSize?: number;
  /** Nak delay after the first failed delivery; doubles with each further one. Default 1000 ms. */
  retryDelayMs?: number;
  /** Cap of the nak delay. Default 15 s (well under the consumer's 30 s ack wait). */
  maxRetryDelayMs?: number;
  /** A failing event is parked on this delivery. Default 5. */
  maxDeliveries?: number;
  /**
   * Least time between the starts of two flushes while events keep coming, ms. Default 25: the read model
   * trails the log by at most that much more, and a steady stream is applied in fewer, larger transactions.
   */
  minFlushIntervalMs?: number;
  /**
   * Checked before each batch is applied: throws (LeaseLost) once this process no longer holds the role's
   * lease (services/leases/single-active.ts). The runner then stops consuming and leaves the batch unacked.
   */
  fence?: Fence;
}

/**
 * Runs one shard of a projection from that shard's durable pull consumer
 * (one per shard stream: sequences, checkpoint row and parked events are the
 * shard's own). ProjectionRunner (sharded.ts) runs one of these per shard.
 *
 * Each batch is applied and the checkpoint advanced in one transaction
 * (compare-and-set, see apply.ts), and acked only after the commit: a crash
 * in between just redelivers events the checkpoint already covers. A failed
 * batch is naked with a growing delay; after `maxDeliveries` the failing
 * event is parked and only its entity waits (apply.ts). Naked events are
 * reapplied before anything after them (InOrderGate).
 *
 * A session is one consume() from the consumer as positioned at the
 * checkpoint. When the checkpoint moves under the runner (an operator reset
 * or a rebuild's swap) or the consumer disappears, the session ends and a
 * new one starts from the checkpoint.
 */
export class ShardRunner {
  private messages: ConsumerMessages | null = null;
  private loop: Promise<void> | null = null;
  private stopping = false;
  private committed = 0;
  private readonly batchSize: number;
  private readonly retryDelayMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly maxDeliveries: number;
  private readonly minFlushIntervalMs: number;
  private readonly fence: Fence | undefined;
  private lastFlushAt = -Infinity;
  private readonly log: Logger;
  /** Consumer deliveries of the open session, checked for holes (delivery-sequence.ts). */
  private deliveries = new DeliverySequence(0);
  /** Set after a hole: the next session recreates the consumer at the checkpoint. */
  private repositionNext = false;

  constructor(
    private readonly deps: ProjectorDeps,
    readonly projection: Projection,
    readonly shard: ShardInfo,
    private readonly metrics: ProjectorMetrics,
    options: RunnerOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 500;
    this.retryDelayMs = options.retryDelayMs ?? 1000;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 15_000;
    this.maxDeliveries = options.maxDeliveries ?? 5;
    this.minFlushIntervalMs = options.minFlushIntervalMs ?? 25;
    this.fence = options.fence;
    // Shard 0 logs as before; the shard is named only where there are several.
    this.log = deps.log.child({ projector: projection.name, ...(deps.shards.length > 1 ? { shard: shard.shard } : {}) });
  }

  get consumerName(): string {
    return projectorConsumerName(this.deps.subjects.namespace, this.projection.name, this.shard.shard);
  }

  /** The checkpoint this runner last committed (or found at start). */
  get checkpoint(): number {
    return this.committed;
  }

  /** Opens the first session (so a wrong epoch fails the start) and consumes in the background. */
  async start(): Promise<void> {
    this.stopping = false;
    this.messages = await this.openSession();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.messages?.close().catch(() => undefined);
    await this.loop?.catch(() => undefined);
    this.loop = null;
  }

  /** Events not yet handled, from the consumer's state on the server. */
  lag(): Promise<number> {
    return consumerLag(this.deps.nats.jsm, this.shard.stream, this.consumerName);
  }

  private async openSession(): Promise<ConsumerMessages> {
    // A holder that lost its lease must not reposition the consumer under the new holder's feet.
    this.fence?.();
    const { db, nats } = this.deps;
    const name = this.projection.name;
    await ensureCheckpointRow(db, name, this.shard.shard, this.shard.epoch);
    const checkpoint = await readCheckpoint(db, name, this.shard.shard);
    if (checkpoint.epoch !== this.shard.epoch) {
      throw new Error(
        `projector ${name}: the event stream was recreated (epoch ${checkpoint.epoch} -> ${this.shard.epoch}); rebuild the read model before starting`,
      );
    }
    this.committed = checkpoint.seq;
    const spec = {
      stream: this.shard.stream,
      name: this.consumerName,
      filterSubjects: consumerFilter(this.projection, this.deps.subjects, this.shard.shard),
      maxAckPending: this.batchSize * 4,
    };
    await ensureDurable(nats.jsm, spec, checkpoint.seq, this.log, { reposition: this.repositionNext });
    this.repositionNext = false;
    const consumer = await nats.js.consumers.get(this.shard.stream, this.consumerName);
    this.deliveries = new DeliverySequence((await consumer.info(false)).delivered.consumer_seq);
    // Without abort_on_missing_resource a deleted consumer would leave consume() waiting forever.
    return consumer.consume({ max_messages: this.batchSize, expires: LIVE_PULL_EXPIRES_MS, abort_on_missing_resource: true });
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.consume(this.messages!);
        if (!this.stopping) this.log.warn('projector consumer ended, reopening from the checkpoint');
      } catch (err) {
        if (this.stopping) break;
        if (err instanceof LeaseLost) {
          // Fenced: whoever holds the lease now projects from the checkpoint; this runner waits to be stopped.
          this.log.warn('projector lease lost; not applying any further batch', { err: err.message });
          await this.messages?.close().catch(() => undefined);
          break;
        }
        if (err instanceof DeliveryGap) {
          this.repositionNext = true;
          this.log.warn('a delivery went to another client or was lost; repositioning the consumer at the checkpoint', { err: err.message });
        } else if (err instanceof CheckpointMoved) this.log.info('checkpoint moved, reopening from it', { err: err.message });
        // What an operator's reset does on purpose (it deletes the consumer so the runner repositions it).
        else if (/consumer (deleted|not found)/i.test(String((err as Error)?.message)))
          this.log.info('projector consumer was deleted, reopening from the checkpoint');
        else this.log.warn('projector session failed, reopening from the checkpoint', { err });
      }
      await this.messages?.close().catch(() => undefined);
      while (!this.stopping) {
        await sleep(this.retryDelayMs);
        try {
          const messages = await this.openSession();
          // Stopped meanwhile: this session was never iterated, and close() only settles once its iterator has run,
          // so waiting for it would hang stop() forever.
          if (this.stopping) void messages.close().catch(() => undefined);
          else this.messages = messages;
          break;
        } catch (err) {
          if (err instanceof LeaseLost) {
            this.log.warn('projector lease lost; not reopening the session', { err: err.message });
            return;
          }
          this.log.error('cannot reopen the projector session, retrying', { err });
        }
      }
    }
  }

  private async consume(messages: ConsumerMessages): Promise<void> {
    const gate = new InOrderGate<JsMsg>();
    for await (const msg of messages) {
      this.deliveries.next(msg.info.deliverySequence, msg.seq);
      // Already covered by the checkpoint (a redelivery after a lost ack).
      if (msg.seq <= this.committed) {
        msg.ack();
        continue;
      }
      gate.arrive(msg);
      if (!gate.recovering && gate.size < this.batchSize) {
        // More is waiting, on the server or already received: it joins this batch.
        if (msg.info.pending > 0 || receivedNotYielded(messages) > 0) continue;
        // Nothing waits, which under a steady stream is true after nearly every event: flushing then would
        // cost a transaction (five round trips to Postgres for a run of messages) per event or two. Flushes are spaced instead:
        // the first event after a quiet spell goes at once, a stream goes in batches of what arrived meanwhile.
        const wait = this.lastFlushAt + this.minFlushIntervalMs - performance.now();
        if (wait > 0) {
          await sleep(wait);
          if (receivedNotYielded(messages) > 0) continue;
        }
      }
      for (let ready = gate.release(this.batchSize); ready.length > 0; ready = gate.release(this.batchSize)) {
        await this.flush(ready, gate);
        if (this.stopping) return;
      }
    }
  }

  private async flush(msgs: JsMsg[], gate: InOrderGate<JsMsg>): Promise<void> {
    const started = performance.now();
    this.lastFlushAt = started;
    this.fence?.();
    try {
      const result = await applyDeliveries(
        this.deps,
        this.projection,
        msgs.map((m) => ({ seq: m.seq, subject: m.subject, data: m.data, deliveries: m.info.deliveryCount })),
        { shard: this.shard.shard, expectedCheckpoint: this.committed, maxDeliveries: this.maxDeliveries },
      );
      this.committed = result.checkpoint;
      // The consumer acks cumulatively (consumer.ts): the last handled event acks every one before it.
      if (result.handled > 0) msgs[result.handled - 1]!.ack();
      this.metrics.applied.inc(result.applied);
      this.metrics.held.inc(result.held);
      this.metrics.parked.inc(result.parked.length);
      this.metrics.batchSeconds.observe((performance.now() - started) / 1000);
      if (result.handled > 0)
        this.metrics.applyDelaySeconds.observe(Math.max(0, Date.now() - Number(msgs[result.handled - 1]!.timestampNanos / 1_000_000n)) / 1000);
      for (const p of result.parked) this.log.error('event parked: its entity waits for a re-drive', { ...p, maxDeliveries: this.maxDeliveries });
      for (const t of result.tombstones.resolved) this.log.info('tombstoned event resolved: its entity flows again', t);
      if (result.handled < msgs.length) this.retry(msgs.slice(result.handled), gate, result.retryReason);
    } catch (err) {
      if (err instanceof CheckpointMoved) throw err;
      this.retry(msgs, gate, err);
    }
  }

  private retry(msgs: JsMsg[], gate: InOrderGate<JsMsg>, reason: unknown): void {
    const deliveries = msgs[0]!.info.deliveryCount;
    const delayMs = Math.min(this.retryDelayMs * 2 ** (deliveries - 1), this.maxRetryDelayMs);
    this.log.warn('batch failed, will be redelivered', { first: msgs[0]!.seq, count: msgs.length, deliveries, delayMs, err: reason });
    this.metrics.retried.inc(msgs.length);
    for (const m of msgs) {
      gate.expect(m.seq);
      m.nak(delayMs);
    }
    // Messages waiting behind the naked ones must not time out on the server meanwhile.
    for (const m of gate.held) m.working();
  }
}

/** The durable consumer of a projector on one shard: shard 0 keeps the one-shard name, shard k > 0 adds `_s<k>`. */
export function projectorConsumerName(namespace: string, projector: string, shard = 0): string {
  return shard === 0 ? `${namespace}-${projector}` : `${namespace}-${projector}_s${shard}`;
}
