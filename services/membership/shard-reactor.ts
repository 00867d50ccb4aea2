import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../observability/logger.js';
import type { Runtime } from '../runtime/runtime.js';
import type { ShardInfo } from '../event-log/streams.js';
import { LeaseLost, type Fence } from '../leases/single-active.js';
import { DeliveryGap, DeliverySequence } from '../projection/delivery-sequence.js';
import { LIVE_PULL_EXPIRES_MS } from '../event-log/live-pull.js';
import { reactToConversationEvent } from './reactions.js';

/** Longest a handled event waits for its (cumulative) ack, and most events one ack covers. */
const ACK_INTERVAL_MS = 100;
const ACK_EVERY = 256;

/**
 * The membership reactor's consumer of one shard's stream: the conversations
 * of that shard, strictly in order. Shards are independent (a conversation's
 * events are all on one shard); the derived user events may land on any.
 */
export class MembershipShardReactor {
  private messages: ConsumerMessages | null = null;
  private loop: Promise<void> | null = null;
  private stopping = false;
  /** Cuts a retry's wait short on stop. */
  private wake = new AbortController();
  private readonly log: Logger;
  /** Consumer deliveries of the open session, checked for holes (services/projection/delivery-sequence.ts). */
  private deliveries = new DeliverySequence(0);
  /** Every event up to this stream sequence has been reacted to in this session (a redelivery of one is skipped). */
  private handledThrough = 0;
  /** Every conversation subject of this shard starts with it (`<ns>.ev.conv.` or `<ns>.ev.<k>.conv.`). */
  private readonly convPrefix: string;

  constructor(
    private readonly runtime: Runtime,
    readonly shard: ShardInfo,
    readonly consumerName: string,
    /** Checked before each event is reacted to: throws once this process no longer holds the `membership` lease. */
    private readonly fence: Fence,
    log: Logger,
  ) {
    this.log = runtime.shards.length > 1 ? log.child({ shard: shard.shard }) : log;
    this.convPrefix = `${runtime.subjects.storedPrefix(shard.shard)}conv.`;
  }

  async start(): Promise<void> {
    this.stopping = false;
    this.wake = new AbortController();
    this.messages = await this.openSession();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake.abort();
    await this.messages?.close().catch(() => undefined);
    await this.loop?.catch(() => undefined);
  }

  /**
   * The consumer reads the whole stream unfiltered: a wildcard filter costs nats-server several times the CPU
   * per delivered event (services/projection/projection.ts), more than skipping the few user events here. It
   * acks cumulatively (one ack per received run of events, not one per event), so events are reacted to
   * strictly in order and a failing one is retried before anything after it.
   */
  private async openSession(): Promise<ConsumerMessages> {
    // A holder that lost its lease must not reposition the consumer under the new holder's feet.
    this.fence();
    const { jsm, js } = this.runtime.nats;
    const { stream } = this.shard;
    const info = await jsm.consumers.info(stream, this.consumerName).catch(() => null);
    // Made by an earlier version (filtered, acked one by one): the ack policy cannot be changed in place.
    const current = info !== null && info.config.ack_policy === AckPolicy.All && !info.config.filter_subject && !info.config.filter_subjects?.length;
    // Deliveries a stopped or killed holder left unacked would come back only after ack_wait, behind newer
    // events: start again after the ack floor instead (reactions are idempotent through their msg ids).
    const resumeAt = info && (info.num_ack_pending > 0 || !current) ? info.ack_floor.stream_seq + 1 : null;
    if (resumeAt !== null) {
      this.log.info('repositioning the membership consumer after its ack floor', { from: resumeAt, unacknowledged: info!.num_ack_pending });
      await jsm.consumers.delete(stream, this.consumerName).catch(() => undefined);
    }
    if (!info || resumeAt !== null) {
      await jsm.consumers.add(stream, {
        durable_name: this.consumerName,
        ack_policy: AckPolicy.All,
        ...(resumeAt !== null ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: resumeAt } : { deliver_policy: DeliverPolicy.All }),
        max_ack_pending: 1000,
        ack_wait: 30_000_000_000,
      });
    }
    const consumer = await js.consumers.get(stream, this.consumerName);
    this.deliveries = new DeliverySequence((await consumer.info(false)).delivered.consumer_seq);
    this.handledThrough = 0;
    // Without abort_on_missing_resource a deleted consumer would leave consume() waiting forever.
    return consumer.consume({ max_messages: 500, expires: LIVE_PULL_EXPIRES_MS, abort_on_missing_resource: true });
  }

  /** Consumes session after session: a hole in the deliveries or a lost consumer reopens after the ack floor. */
  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        if ((await this.consume(this.messages!)) === 'fenced') return;
        if (!this.stopping) this.log.warn('membership consumer ended, reopening after its ack floor');
      } catch (err) {
        if (this.stopping) break;
        if (err instanceof DeliveryGap)
          this.log.warn('a delivery went to another client or was lost; repositioning the membership consumer', { err: err.message });
        else this.log.warn('membership consumer failed, reopening after its ack floor', { err });
      }
      await this.messages?.close().catch(() => undefined);
      while (!this.stopping) {
        await sleep(1000, undefined, { signal: this.wake.signal }).catch(() => undefined);
        if (this.stopping) break;
        try {
          this.messages = await this.openSession();
          break;
        } catch (err) {
          if (err instanceof LeaseLost) {
            this.log.warn('membership lease lost; not reopening the consumer', { err: err.message });
            return;
          }
          this.log.error('cannot reopen the membership consumer, retrying', { err });
        }
      }
    }
  }

  private async consume(messages: ConsumerMessages): Promise<'fenced' | 'ended'> {
    // The last event handled and not yet acked. Acks go out at most every ACK_INTERVAL_MS (or every
    // ACK_EVERY events): under a steady stream events arrive one by one, and an ack each would be a socket
    // write here and a message for nats-server per event. Well within ack_wait (30 s).
    let last: JsMsg | null = null;
    let unacked = 0;
    let timer: NodeJS.Timeout | null = null;
    const ack = () => {
      if (timer) clearTimeout(timer);
      timer = null;
      last?.ack();
      last = null;
      unacked = 0;
    };
    try {
      for await (const msg of messages) {
        this.deliveries.next(msg.info.deliverySequence, msg.seq);
        // Only conversations' events change membership; a redelivery of one already handled changes nothing.
        if (msg.subject.startsWith(this.convPrefix) && msg.seq > this.handledThrough && !(await this.reactInOrder(msg))) return 'fenced';
        this.handledThrough = Math.max(this.handledThrough, msg.seq);
        last = msg;
        if (++unacked >= ACK_EVERY) ack();
        else timer ??= setTimeout(ack, ACK_INTERVAL_MS);
      }
      return 'ended';
    } finally {
      // Everything up to `last` was reacted to (in order), whatever ended the session.
      ack();
    }
  }

  /** Reacts to one event, retrying (with a growing delay) until it succeeds: no later event is acked before it. False when fenced or stopping. */
  private async reactInOrder(msg: JsMsg): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        this.fence();
      } catch (err) {
        // Fenced: left unacked for the new holder; this reactor waits to be stopped.
        this.log.warn('membership lease lost; reacting to nothing further', { seq: msg.seq, err: String(err) });
        return false;
      }
      try {
        await reactToConversationEvent(this.runtime, this.log, { shard: this.shard.shard, seq: msg.seq, subject: msg.subject, data: msg.data });
        return true;
      } catch (err) {
        if (this.stopping) return false;
        const delayMs = Math.min(1000 * 2 ** (attempt - 1), 15_000);
        this.log.error('membership reaction failed, will retry', { seq: msg.seq, attempt, delayMs, err });
        await sleep(delayMs, undefined, { signal: this.wake.signal }).catch(() => undefined);
        if (this.stopping) return false;
        // Still ours: the server must not hand it (and what follows) to anyone else meanwhile.
        msg.working();
      }
    }
  }
}
