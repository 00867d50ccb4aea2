import { setTimeout as sleep } from 'node:timers/promises';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { parseEntitySubject } from '../../contracts/index.js';
import type { StoredMessage } from './ledger.js';

/**
 * The harness's own view of the event stream: who leads it
 * ($JS.API.STREAM.INFO -> cluster.leader), whether every replica is current
 * again, and, at the end, every message it holds.
 */
export class StreamProbe {
  private readonly durables = new Set<string>();
  private durablesListedAt = 0;
  private constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    readonly stream: string,
  ) {}

  static async open(url: string, stream: string): Promise<StreamProbe> {
    const nc = await connect({ servers: url.split(','), name: 'parley-chaos-probe', maxReconnectAttempts: -1, reconnectTimeWait: 250, pingInterval: 2000 });
    return new StreamProbe(nc, await jetstreamManager(nc, { timeout: 2000, checkAPI: false }), stream);
  }

  /**
   * Resolves once the cluster can place a stream with `replicas` copies: a
   * meta leader alone is not enough right after the servers start (the
   * others may not be known to it yet: "no suitable peers for placement").
   */
  async waitPlacement(replicas: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const name = `${this.stream}_placement_probe`;
    for (;;) {
      try {
        await this.jsm.streams.add({ name, subjects: [`${name}.x`], num_replicas: replicas });
        await this.jsm.streams.delete(name);
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`cannot place an R${replicas} stream after ${timeoutMs} ms: ${String(err)}`);
        await sleep(250);
      }
    }
  }

  /** The server name leading the stream, or null while there is none (or nobody answers). */
  async leader(): Promise<string | null> {
    try {
      return (await this.jsm.streams.info(this.stream)).cluster?.leader ?? null;
    } catch {
      return null;
    }
  }

  /** Waits for a leader, retrying while the cluster elects one; throws after `timeoutMs`. */
  async waitLeader(timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const l = await this.leader();
      if (l) return l;
      if (Date.now() > deadline) throw new Error(`stream ${this.stream} has no leader after ${timeoutMs} ms`);
      await sleep(200);
    }
  }

  /** Resolves once the stream has a leader and `replicas - 1` followers all current and online; the time it took. */
  async waitCurrent(replicas: number, timeoutMs: number): Promise<number> {
    const start = Date.now();
    for (;;) {
      try {
        const c = (await this.jsm.streams.info(this.stream)).cluster;
        const followers = c?.replicas ?? [];
        if (c?.leader && followers.length === replicas - 1 && followers.every((r) => r.current && !r.offline)) return Date.now() - start;
      } catch {
        // no leader yet, or the server we asked is frozen
      }
      if (Date.now() - start > timeoutMs) throw new Error(`stream ${this.stream} replicas not current after ${timeoutMs} ms`);
      await sleep(200);
    }
  }

  /** The most events any durable consumer of the stream (a projector, the notifier) has yet to handle; null when nobody answers. */
  async consumerLag(): Promise<number | null> {
    // Listing every consumer also lists the gateways' short-lived ordered ones, and a clustered listing fails
    // while some of them are being created or deleted elsewhere: ask for the durables by name once known.
    try {
      if (this.durables.size === 0 || Date.now() - this.durablesListedAt > 10_000) {
        for await (const c of this.jsm.consumers.list(this.stream)) if (c.config.durable_name) this.durables.add(c.config.durable_name);
        this.durablesListedAt = Date.now();
      }
    } catch {
      // keep the names known so far
    }
    if (this.durables.size === 0) return null;
    try {
      let worst = 0;
      for (const name of this.durables) {
        const c = await this.jsm.consumers.info(this.stream, name);
        worst = Math.max(worst, c.num_pending + c.num_ack_pending);
      }
      return worst;
    } catch {
      return null;
    }
  }

  /** Resolves once every durable consumer is within `maxLag` events of the stream's end; the time it took. */
  async waitCaughtUp(maxLag: number, timeoutMs: number): Promise<number> {
    const start = Date.now();
    for (;;) {
      const lag = await this.consumerLag();
      if (lag !== null && lag <= maxLag) return Date.now() - start;
      if (Date.now() - start > timeoutMs) throw new Error(`consumers of ${this.stream} still ${lag ?? '?'} events behind after ${timeoutMs} ms`);
      await sleep(250);
    }
  }

  /** Every `message.sent` stored in the stream (read with an ordered consumer, unfiltered). */
  async messages(namespace: string): Promise<StoredMessage[]> {
    const last = (await this.jsm.streams.info(this.stream)).state.last_seq;
    const out: StoredMessage[] = [];
    if (last === 0) return out;
    const consumer = await jetstream(this.nc).consumers.get(this.stream, { opt_start_seq: 1 });
    // A conversation's stored subject on any shard (`<ns>.ev.conv.<id>`, or `<ns>.ev.<k>.conv.<id>` on shard k > 0).
    const isConv = (subject: string) => subject.startsWith(`${namespace}.ev.`) && parseEntitySubject(subject)?.kind === 'conv';
    const decoder = new TextDecoder();
    for (let done = false; !done; ) {
      const batch = await consumer.fetch({ max_messages: 5000, expires: 5000 });
      let received = 0;
      for await (const m of batch) {
        received++;
        if (isConv(m.subject)) {
          const ev = JSON.parse(decoder.decode(m.data)) as { type?: string; actor?: string; data?: Record<string, unknown> };
          if (ev.type === 'message.sent' && ev.data) {
            out.push({
              conversationId: String(ev.data.conversationId),
              clientMsgId: String(ev.data.clientMsgId),
              sender: String(ev.actor),
              messageId: String(ev.data.messageId),
              seq: m.seq,
            });
          }
        }
        if (m.seq >= last) {
          done = true;
          break;
        }
      }
      if (received === 0) throw new Error(`reading stream ${this.stream}: no messages before seq ${last}`);
    }
    return out;
  }

  async close(): Promise<void> {
    await this.nc.close().catch(() => undefined);
  }
}
