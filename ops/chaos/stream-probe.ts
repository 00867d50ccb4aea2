import { setTimeout as sleep } from 'node:timers/promises';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { parseEntitySubject } from '../../contracts/index.js';
import type { StoredMessage } from './ledger.js';

/**
 * The harness's own view of the event streams (one per shard): who leads the
 * first ($JS.API.STREAM.INFO -> cluster.leader; the NATS faults hit that
 * server), whether every replica of every shard's stream is current again,
 * how far every shard's durable consumers are behind, and, at the end, every
 * message the streams hold.
 */
export class StreamProbe {
  /** Durable consumer names per stream: sequences, and so lags, are per shard's stream. */
  private readonly durables = new Map<string, Set<string>>();
  private durablesListedAt = 0;
  /** Shard 0's stream: the one whose leader the faults target. */
  readonly stream: string;
  private constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    /** Every shard's stream, shard k at k. */
    readonly streams: readonly string[],
  ) {
    this.stream = streams[0]!;
  }

  /** `streams`: one stream, or every shard's (shard 0 first). */
  static async open(url: string, streams: string | readonly string[]): Promise<StreamProbe> {
    if (typeof streams === 'string') streams = [streams];
    if (streams.length === 0) throw new Error('no stream to probe');
    const nc = await connect({ servers: url.split(','), name: 'parley-chaos-probe', maxReconnectAttempts: -1, reconnectTimeWait: 250, pingInterval: 2000 });
    return new StreamProbe(nc, await jetstreamManager(nc, { timeout: 2000, checkAPI: false }), streams);
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

  /** Resolves once every shard's stream has a leader and `replicas - 1` followers all current and online; the time it took. */
  async waitCurrent(replicas: number, timeoutMs: number): Promise<number> {
    const start = Date.now();
    // A node's fault touches every stream it holds a replica of, whichever shard's leader it was.
    for (const stream of this.streams) {
      for (;;) {
        try {
          const c = (await this.jsm.streams.info(stream)).cluster;
          const followers = c?.replicas ?? [];
          if (c?.leader && followers.length === replicas - 1 && followers.every((r) => r.current && !r.offline)) break;
        } catch {
          // no leader yet, or the server we asked is frozen
        }
        if (Date.now() - start > timeoutMs) throw new Error(`stream ${stream} replicas not current after ${timeoutMs} ms`);
        await sleep(200);
      }
    }
    return Date.now() - start;
  }

  /**
   * The most events any durable consumer of any shard's stream (a projector, the notifier) has yet to handle,
   * counted in its own stream; null when nobody answers or a stream has no durable yet (every shard has its own
   * consumers, and a shard nobody consumes has not caught up).
   */
  async consumerLag(): Promise<number | null> {
    // Listing every consumer also lists the gateways' short-lived ordered ones, and a clustered listing fails
    // while some of them are being created or deleted elsewhere: ask for the durables by name once known.
    const relist = Date.now() - this.durablesListedAt > 10_000;
    for (const stream of this.streams) {
      const known = this.durables.get(stream) ?? new Set<string>();
      this.durables.set(stream, known);
      if (known.size > 0 && !relist) continue;
      try {
        for await (const c of this.jsm.consumers.list(stream)) if (c.config.durable_name) known.add(c.config.durable_name);
      } catch {
        // keep the names known so far
      }
    }
    if (relist) this.durablesListedAt = Date.now();
    if ([...this.durables.values()].some((names) => names.size === 0)) return null;
    try {
      let worst = 0;
      for (const [stream, names] of this.durables) {
        for (const name of names) {
          const c = await this.jsm.consumers.info(stream, name);
          const lag = c.num_pending + c.num_ack_pending;
          if (lag >= worst) this.laggiest = `${stream}/${name} (${c.num_pending} pending, ${c.num_ack_pending} unacknowledged)`;
          worst = Math.max(worst, lag);
        }
      }
      return worst;
    } catch {
      return null;
    }
  }

  /** The consumer furthest behind at the last lag check, for a report that names what did not catch up. */
  laggiest = '';

  /** Resolves once every durable consumer of every shard is within `maxLag` events of its stream's end; the time it took. */
  async waitCaughtUp(maxLag: number, timeoutMs: number): Promise<number> {
    const start = Date.now();
    for (;;) {
      const lag = await this.consumerLag();
      if (lag !== null && lag <= maxLag) return Date.now() - start;
      if (Date.now() - start > timeoutMs)
        throw new Error(`consumers of ${this.streams.join(', ')} still ${lag ?? '?'} events behind after ${timeoutMs} ms; furthest behind: ${this.laggiest}`);
      await sleep(250);
    }
  }

  /** Every `message.sent` stored in every shard's stream (each read with an ordered consumer, unfiltered); `seq` is in its shard's stream. */
  async messages(namespace: string): Promise<StoredMessage[]> {
    const out: StoredMessage[] = [];
    for (const stream of this.streams) out.push(...(await this.streamMessages(stream, namespace)));
    return out;
  }

  private async streamMessages(stream: string, namespace: string): Promise<StoredMessage[]> {
    const last = (await this.jsm.streams.info(stream)).state.last_seq;
    const out: StoredMessage[] = [];
    if (last === 0) return out;
    const consumer = await jetstream(this.nc).consumers.get(stream, { opt_start_seq: 1 });
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
      if (received === 0) throw new Error(`reading stream ${stream}: no messages before seq ${last}`);
    }
    return out;
  }

  async close(): Promise<void> {
    await this.nc.close().catch(() => undefined);
  }
}
