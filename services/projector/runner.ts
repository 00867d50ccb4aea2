import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../shared/db/schema.js';
import type { Logger } from '../shared/logger.js';
import { decodeEvent, type StoredEvent } from '../shared/nats/event-store.js';
import type { Runtime } from '../shared/runtime.js';

/** A read model folded from the log inside Postgres transactions. */
export interface Projection {
  /** Checkpoint key and (with the namespace) durable consumer name. */
  name: string;
  filterSubjects: string[];
  /** Applies a batch in log order. Must be idempotent per event: a replay of an applied event changes nothing. */
  apply(trx: Transaction<Database>, batch: StoredEvent[]): Promise<void>;
}

export interface RunnerOptions {
  /** Largest batch applied in one transaction. */
  batchSize?: number;
  /** Delay before a failed batch is redelivered. */
  retryDelayMs?: number;
}

/**
 * Runs a projection from a durable pull consumer. Each batch is applied and
 * the checkpoint advanced in one transaction; the checkpoint update is
 * compare-and-set, so two runners cannot both advance it and a redelivered
 * event at or below the checkpoint is skipped. Messages are acked only after
 * commit: a crash between commit and ack just redelivers events the
 * checkpoint already covers.
 */
export class ProjectionRunner {
  private messages: ConsumerMessages | null = null;
  private loop: Promise<void> | null = null;
  private stopping = false;
  private readonly batchSize: number;
  private readonly retryDelayMs: number;
  private readonly log: Logger;

  constructor(
    private readonly runtime: Runtime,
    private readonly projection: Projection,
    options: RunnerOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 500;
    this.retryDelayMs = options.retryDelayMs ?? 1000;
    this.log = runtime.log.child({ projector: projection.name });
  }

  get consumerName(): string {
    return `${this.runtime.subjects.namespace}-${this.projection.name}`;
  }

  async start(): Promise<void> {
    const { jsm, js } = this.runtime.nats;
    const shard = this.runtime.shards[0]!;
    await ensureCheckpointRow(this.runtime.db, this.projection.name, shard.shard, shard.epoch);
    const checkpoint = await readCheckpoint(this.runtime.db, this.projection.name, shard.shard);
    if (checkpoint.epoch !== shard.epoch) {
      throw new Error(
        `projector ${this.projection.name}: the event stream was recreated (epoch ${checkpoint.epoch} -> ${shard.epoch}); rebuild the read model before starting`,
      );
    }
    try {
      await jsm.consumers.info(shard.stream, this.consumerName);
    } catch {
      await jsm.consumers.add(shard.stream, {
        durable_name: this.consumerName,
        ack_policy: AckPolicy.Explicit,
        // Resume where the read model is, even if the consumer was deleted.
        deliver_policy: checkpoint.seq > 0 ? DeliverPolicy.StartSequence : DeliverPolicy.All,
        ...(checkpoint.seq > 0 ? { opt_start_seq: checkpoint.seq + 1 } : {}),
        filter_subjects: this.projection.filterSubjects,
        max_ack_pending: this.batchSize * 4,
        ack_wait: 30_000_000_000,
      });
    }
    const consumer = await js.consumers.get(shard.stream, this.consumerName);
    this.messages = await consumer.consume({ max_messages: this.batchSize });
    this.loop = this.run(this.messages);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.messages?.close().catch(() => undefined);
    await this.loop?.catch(() => undefined);
  }

  private async run(messages: ConsumerMessages): Promise<void> {
    let batch: JsMsg[] = [];
    for await (const msg of messages) {
      batch.push(msg);
      // Flush when nothing more is waiting or the batch is full: low latency
      // when idle, large transactions under load.
      if (msg.info.pending > 0 && batch.length < this.batchSize) continue;
      const current = batch;
      batch = [];
      await this.applyBatch(current);
      if (this.stopping) break;
    }
  }

  private async applyBatch(msgs: JsMsg[]): Promise<void> {
    const shard = this.runtime.shards[0]!;
    const decoded: StoredEvent[] = [];
    for (const m of msgs) {
      try {
        decoded.push({ seq: m.seq, subject: m.subject, event: decodeEvent(m.data) });
      } catch (err) {
        // An event no version of the schema can read would block the projector forever.
        this.log.error('undecodable event skipped', { seq: m.seq, subject: m.subject, err });
      }
    }
    try {
      await this.runtime.db.transaction().execute(async (trx) => {
        const checkpoint = await readCheckpoint(trx, this.projection.name, shard.shard, true);
        const fresh = decoded.filter((e) => e.seq > checkpoint.seq);
        if (fresh.length === 0) return;
        await this.projection.apply(trx, fresh);
        const last = msgs[msgs.length - 1]!.seq;
        const advanced = await trx
          .updateTable('projector_checkpoints')
          .set({ seq: last, updated_at: sql`now()` })
          .where('projector', '=', this.projection.name)
          .where('shard', '=', shard.shard)
          .where('seq', '=', String(checkpoint.seq))
          .executeTakeFirst();
        if (advanced.numUpdatedRows !== 1n) throw new Error('checkpoint moved concurrently');
      });
      for (const m of msgs) m.ack();
    } catch (err) {
      this.log.error('batch failed, will be redelivered', { first: msgs[0]?.seq, count: msgs.length, err });
      for (const m of msgs) m.nak(this.retryDelayMs);
    }
  }
}

export async function ensureCheckpointRow(db: Kysely<Database>, projector: string, shard: number, epoch: string): Promise<void> {
  await db.insertInto('projector_checkpoints').values({ projector, shard, epoch, seq: 0 }).onConflict((oc) => oc.doNothing()).execute();
}

export async function readCheckpoint(
  db: Kysely<Database> | Transaction<Database>,
  projector: string,
  shard: number,
  forUpdate = false,
): Promise<{ seq: number; epoch: string }> {
  let query = db.selectFrom('projector_checkpoints').select(['seq', 'epoch']).where('projector', '=', projector).where('shard', '=', shard);
  if (forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return { seq: row ? Number(row.seq) : 0, epoch: row?.epoch ?? '' };
}
