import type { ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import type { Logger } from '../observability/logger.js';
import type { Runtime } from '../runtime/runtime.js';
import type { Fence } from '../leases/single-active.js';
import type { ShardInfo } from '../event-log/streams.js';
import { noteStorageFailure, storageAlarms } from '../observability/storage-full.js';
import { consumeLogFrom, type projectorMetrics } from './consumer.js';
import { readStoredEvent, toEventRow } from './rows.js';
import { batchToken, eventRowLine, insertEvents, readIntent, writeIntent, type BatchIntent, type CheckpointKey } from './sink.js';

/** What a shard's ingest needs from the projector (projector.ts): its settings, resolved. */
export interface ShardIngestSettings {
  maxBatch: number;
  maxDelayMs: number;
  retryDelayMs: number;
  fence: Fence | undefined;
  /** The checkpoint rows' consumer (shard 0's consumer name); the shard is a column of its own. */
  checkpointConsumer: string;
  counters: ReturnType<typeof projectorMetrics>;
  /** Shared by every shard's ingest: one batch (with its retries) at a time into ClickHouse. */
  turn: InsertTurn;
}

/**
 * One batch at a time over every shard. A retried batch is only deduplicated
 * while its token is among the table's last 1000 blocks
 * (non_replicated_deduplication_window, migrations 0002+): with one log that
 * holds because nothing else inserts before the retry, and taking turns keeps
 * it so with several shards. chDB runs one statement of a session at a time
 * anyway.
 */
export class InsertTurn {
  private tail: Promise<void> = Promise.resolve();

  /** Resolves with the release once it is this caller's turn; `waiting` runs every 20 s until then. */
  async acquire(waiting: () => void): Promise<() => void> {
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const before = this.tail;
    this.tail = before.then(() => mine);
    const tick = setInterval(waiting, 20_000);
    try {
      await before;
    } finally {
      clearInterval(tick);
    }
    return release;
  }
}

/**
 * Events turned into rows between two turns of the event loop. Deliveries
 * already buffered come as microtasks, which never let it turn, and the
 * batch in flight moves on only there (its checkpoint write and its INSERT
 * are two steps): without a turn now and then, the next batch would be
 * fully prepared before the INSERT of this one even starts.
 */
export const EVENTS_PER_TURN = 1000;
export const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

interface Item {
  msg: JsMsg;
  /** The event's row (a TabSeparated line), or null for an event that cannot be read. */
  line: string | null;
}

/**
 * Folds one shard's stream into ClickHouse (docs/analytics.md, "Idempotency").
 * Sequences, checkpoints, tokens and tombstones here are all of this shard:
 * rows are keyed by (shard, epoch, seq), so shards never collide.
 *
 * Batches are inserted strictly one after another, each recorded in
 * `ingest_checkpoints` (sequence range and dedup token) before its INSERT and
 * acked after it. So every batch before the recorded one has landed; the
 * recorded one may have landed in part. On start the projector rebuilds that
 * batch from the same sequence range and inserts it with the same token (a
 * no-op for whatever landed), then continues. A failed insert is retried
 * identically until it succeeds, and no later batch is sent before it.
 *
 * The durable consumer is recreated at every start from the checkpoint: a
 * surviving one would redeliver the last run's unacked events only after
 * ack_wait, behind newer ones, and this projector relies on log order.
 */
export class AnalyticsShardIngest {
  private messages: ConsumerMessages | null = null;
  private loop: Promise<void> | null = null;
  private key: CheckpointKey | null = null;
  private recovery: BatchIntent | null = null;
  private pending: Item[] = [];
  private pendingSince = 0;
  private caughtUp = false;
  private inflight: Promise<void> | null = null;
  private failed = false;
  private stopping = false;
  private timer: NodeJS.Timeout | null = null;
  private wake: (() => void) | null = null;
  private readonly maxBatch: number;
  private readonly maxDelayMs: number;
  private readonly retryDelayMs: number;
  private readonly fence: Fence | undefined;
  private readonly log: Logger;
  private readonly database: string;
  private readonly counters: ReturnType<typeof projectorMetrics>;
  private readonly checkpointConsumer: string;
  private readonly turn: InsertTurn;
  private readonly shardOf: (conversationId: string) => number;
  /** Every event of this shard's current stream epoch up to this sequence is in ClickHouse. */
  insertedThrough = 0;
  /**
   * Sequences (of this shard) named by `log.tombstoned` events: never counted. Loaded from the
   * log's tombstone index at start (an ingest from the log's first event meets
   * each before its tombstone), extended by the tombstones that pass by.
   */
  private tombstoned = new Set<number>();

  constructor(
    private readonly runtime: Runtime,
    readonly shard: ShardInfo,
    /** The durable consumer on this shard's stream. */
    readonly consumerName: string,
    settings: ShardIngestSettings,
  ) {
    this.maxBatch = settings.maxBatch;
    this.maxDelayMs = settings.maxDelayMs;
    this.retryDelayMs = settings.retryDelayMs;
    this.fence = settings.fence;
    this.checkpointConsumer = settings.checkpointConsumer;
    this.log = runtime.log.child(runtime.shards.length > 1 ? { projector: 'analytics', shard: shard.shard } : { projector: 'analytics' });
    this.database = runtime.config.clickhouse.database;
    this.counters = settings.counters;
    this.turn = settings.turn;
    this.shardOf = runtime.subjects.shardOf;
  }

  async start(): Promise<void> {
    if (this.loop) throw new Error('analytics projector already running');
    const shard = this.shard;
    this.stopping = false;
    this.failed = false;
    this.key = { consumer: this.checkpointConsumer, shard: shard.shard, epoch: shard.epoch };
    this.recovery = await readIntent(this.runtime.clickhouse, this.database, this.key);
    this.insertedThrough = this.recovery ? this.recovery.first - 1 : 0;
    const tombstones = await this.runtime.db
      .selectFrom('log_tombstones')
      .select('seq')
      .where('stream', '=', shard.stream)
      .where('epoch', '=', shard.epoch)
      .execute()
      .catch((err: unknown) => {
        this.log.warn('cannot read the log tombstones; tombstoned events before their tombstone are counted', { err });
        return [];
      });
    this.tombstoned = new Set(tombstones.map((t) => Number(t.seq)));
    const from = this.insertedThrough + 1;
    this.messages = await consumeLogFrom(this.runtime, shard.stream, this.consumerName, from, this.maxBatch);
    this.loop = this.run(this.messages);
    this.log.info('analytics projector started', { from, recovering: this.recovery });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.clearTimer();
    this.wake?.();
    await this.messages?.close().catch(() => undefined);
    await this.loop;
    // One last attempt for what was collected; if it fails, the next start redoes it from the checkpoint.
    // Never a partial recovery batch: its token would mark the whole recorded range as inserted.
    if (!this.inflight && !this.recovery) this.seal(true);
    await this.inflight;
    this.loop = null;
    this.messages = null;
    this.pending = [];
  }

  /** Resolves once every event of this shard up to `seq` is in ClickHouse. */
  async waitFor(seq: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.insertedThrough < seq) {
      if (Date.now() > deadline) throw new Error(`analytics reached seq ${this.insertedThrough} of ${this.shard.stream}, not ${seq}, within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private async run(messages: ConsumerMessages): Promise<void> {
    try {
      for await (const msg of messages) {
        if (this.stopping) break;
        // Already in ClickHouse: a redelivery.
        if (msg.seq <= this.insertedThrough) {
          msg.ack();
          continue;
        }
        // The batch being recovered ends before this event: send it as recorded, whatever of it was delivered.
        if (this.recovery && msg.seq > this.recovery.last) this.seal(true);
        this.pending.push({ msg, line: this.toLine(msg) });
        this.caughtUp = msg.info.pending === 0;
        if (this.pending.length === 1) {
          this.pendingSince = performance.now();
          this.armTimer();
        }
        this.seal(false);
        if (this.pending.length % EVENTS_PER_TURN === 0) await nextTurn();
        // Backpressure: collect at most one full batch while another is being inserted.
        while (this.pending.length >= this.maxBatch && this.inflight) await this.inflight;
      }
    } catch (err) {
      if (!this.stopping) this.log.error('analytics consumer failed', { err });
    }
    if (!this.stopping) this.log.error('analytics consumer ended unexpectedly; restart the projector');
  }

  private toLine(msg: JsMsg): string | null {
    try {
      const shard = this.key!;
      if (this.tombstoned.has(msg.seq)) return null;
      const event = readStoredEvent(msg.data);
      const data = event.data as { stream?: unknown; seq?: unknown } | null;
      // A tombstone is on its target's subject, so in this shard; it names its stream all the same.
      if (event.type === 'log.tombstoned' && data?.stream === this.shard.stream && typeof data.seq === 'number') this.tombstoned.add(data.seq);
      return eventRowLine(toEventRow({ shard: shard.shard, epoch: shard.epoch, seq: msg.seq, subject: msg.subject, shardOf: this.shardOf }, event));
    } catch (err) {
      // It stays in the log; a rebuild after a fix counts it.
      this.log.error('unreadable event not counted in analytics', { stream: this.shard.stream, seq: msg.seq, subject: msg.subject, err });
      return null;
    }
  }

  private due(): boolean {
    const last = this.pending[this.pending.length - 1];
    if (!last) return false;
    const aged = performance.now() - this.pendingSince >= this.maxDelayMs;
    if (this.recovery) return last.msg.seq >= this.recovery.last || (aged && this.caughtUp);
    return this.pending.length >= this.maxBatch || aged;
  }

  /** Starts inserting the collected events when due (or now, when forced), unless a batch is in flight or failed. */
  private seal(force: boolean): void {
    if (this.inflight || this.failed || (!force && !this.due())) return;
    const items = this.pending;
    this.pending = [];
    this.clearTimer();
    const recovery = this.recovery;
    this.recovery = null;
    if (items.length === 0) {
      if (recovery) this.insertedThrough = Math.max(this.insertedThrough, recovery.last);
      return;
    }
    const first = items[0]!.msg.seq;
    const last = items[items.length - 1]!.msg.seq;
    const intent = recovery ?? { first, last, token: batchToken(this.key!, first, last) };
    this.inflight = this.flush(intent, items, recovery !== null).finally(() => {
      this.inflight = null;
      if (this.pending.length > 0 && !this.stopping) {
        if (!this.timer) this.armTimer();
        this.seal(false);
      }
    });
  }

  private async flush(intent: BatchIntent, items: Item[], recorded: boolean): Promise<void> {
    const lines: string[] = [];
    for (const i of items) if (i.line !== null) lines.push(i.line);
    // Its events stay ours while other shards' batches go first (ack_wait is 60 s).
    const release = await this.turn.acquire(() => {
      for (const i of items) i.msg.working();
    });
    try {
      if (!(await this.insertUntilLanded(intent, items, lines, recorded))) return;
    } finally {
      release();
    }
    this.insertedThrough = Math.max(this.insertedThrough, intent.last);
    // The consumer acks cumulatively: one ack for the batch instead of one publish per event.
    items[items.length - 1]!.msg.ack();
    this.counters.events.inc(undefined, lines.length);
    this.counters.seq.set({ shard: String(this.shard.shard) }, this.insertedThrough);
  }

  /** Inserts the batch, retrying identically until it lands (true), or until fenced or stopped (false, marked failed). */
  private async insertUntilLanded(intent: BatchIntent, items: Item[], lines: string[], recorded: boolean): Promise<boolean> {
    let delay = this.retryDelayMs;
    for (let attempt = 1; ; attempt++) {
      try {
        this.fence?.();
      } catch (err) {
        // Fenced: the new holder redoes this batch from the checkpoint; nothing more is sent from here.
        this.log.warn('analytics lease lost; batch left to the new holder', { first: intent.first, last: intent.last, err: String(err) });
        this.failed = true;
        return false;
      }
      try {
        if (!recorded) await writeIntent(this.runtime.clickhouse, this.database, this.key!, intent);
        recorded = true;
        await insertEvents(this.runtime.clickhouse, this.database, lines, intent.token);
        storageAlarms.clear('clickhouse');
        return true;
      } catch (err) {
        this.counters.failures.inc();
        // A full disk (NOT_ENOUGH_SPACE, ENOSPC) is reported on /healthz until an insert fits again.
        noteStorageFailure(err, 'clickhouse');
        this.log.error('analytics batch insert failed; retrying the same batch', { first: intent.first, last: intent.last, attempt, err });
        if (this.stopping) {
          this.failed = true;
          return false;
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delay);
          this.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.wake = null;
        delay = Math.min(delay * 2, 30_000);
        for (const i of items) i.msg.working();
      }
    }
  }

  /** Wakes `seal` when the oldest collected event reaches its maximum wait. */
  private armTimer(): void {
    this.clearTimer();
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.seal(false);
        // Timers may fire a little early: never leave collected events without one.
        if (this.pending.length > 0 && !this.inflight && !this.timer && !this.stopping) this.armTimer();
      },
      Math.max(1, Math.ceil(this.pendingSince + this.maxDelayMs - performance.now())),
    );
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
