import { sql, type Kysely } from 'kysely';
import type { Database } from '../read-store/schema.js';
import { AppError } from '../runtime/errors.js';
import { NextCallBatcher } from '../concurrency/next-call-batcher.js';
import type { IdempotencyIndex } from '../commands/conversation-commands.js';

const READ_MODEL_PROJECTOR = 'read-model';

export interface ResumeIndex {
  /** The read model's position in each shard (index k: shard k) when `memberships` was read. */
  checkpoints: number[];
  memberships: Membership[];
}

/** A conversation of the user with the sequence of its latest applied event and of the user's join (both in the conversation's shard). */
export interface Membership {
  id: string;
  lastSeq: number;
  joinedSeq: number;
}

/** How the read model is spread over the log's shards (STREAM_SHARDS); one shard when omitted. */
export interface ReadModelShards {
  count: number;
  /** The shard holding a conversation's events. */
  shardOf(conversationId: string): number;
  /** The last sequence of shard k's stream, so a position past it is refused instead of waited for. */
  logEnd?: (shard: number) => Promise<number>;
}

/**
 * A conversation's last event as far as resumes are concerned. While the read model's projector holds a
 * conversation back (an event parked, later ones held behind it), `conversations.last_seq` stops moving
 * although the log goes on; every event past it has an open parked/held row, so the highest of those is the
 * conversation's real last position, and a resume replays it from the log instead of skipping it.
 *
 * Only the rows of the conversation's own shard count (sequences of other shards are unrelated). The shard is
 * a hash computed in code, so this gives the highest open row per shard (`{"<shard>": seq}`) and
 * `lastSeqOf` picks the conversation's; rows are looked up per shard on the (projector, shard, entity) index.
 */
const openParked = (shards: number[]) => sql`coalesce((
  select json_object_agg(o.shard, o.seq) from (
    select p.shard, max(p.seq) as seq from parked_events p
    where p.projector = ${READ_MODEL_PROJECTOR} and p.shard = any(${shards}::int[]) and p.entity = 'conv:' || c.id and p.status in ('parked', 'held')
    group by p.shard
  ) o
), '{}'::json)`;

/** Membership, idempotency and read-your-writes lookups on the Postgres read model. */
export class ReadModel implements IdempotencyIndex {
  private readonly shards: ReadModelShards;
  private readonly shardIds: number[];

  constructor(
    private readonly db: Kysely<Database>,
    shards?: ReadModelShards,
  ) {
    this.shards = shards ?? { count: 1, shardOf: () => 0 };
    this.shardIds = Array.from({ length: this.shards.count }, (_, k) => k);
  }

  /** A conversation's effective last sequence: its applied last, or its shard's highest open parked row. */
  private lastSeqOf(id: string, lastSeq: string | number, parked: Record<string, string | number>): number {
    return Math.max(Number(lastSeq), Number(parked[String(this.shards.shardOf(id))] ?? 0));
  }

  /**
   * A message the sender already stored under this client message id. Every
   * send asks (retries beyond the log's dedup window are answered from here),
   * so concurrent sends share one query per batch.
   */
  findMessage(conversationId: string, senderId: string, clientMsgId: string): Promise<{ seq: number } | null> {
    return this.sentMessages.load(`${conversationId}\u0000${senderId}\u0000${clientMsgId}`);
  }

  private readonly sentMessages = new NextCallBatcher<string, { seq: number } | null>(
    (keys) => this.findMessages(keys),
    () => null,
    500,
    4,
  );

  private async findMessages(keys: string[]): Promise<Map<string, { seq: number } | null>> {
    const parts = keys.map((k) => k.split('\u0000') as [string, string, string]);
    const { rows } = await sql<{ conversation_id: string; sender_id: string; client_msg_id: string; seq: string }>`
      select m.conversation_id, m.sender_id, m.client_msg_id, m.seq
      from unnest(${parts.map((p) => p[0])}::text[], ${parts.map((p) => p[1])}::text[], ${parts.map((p) => p[2])}::text[]) as k(conversation_id, sender_id, client_msg_id)
      join messages m on m.conversation_id = k.conversation_id and m.sender_id = k.sender_id and m.client_msg_id = k.client_msg_id`.execute(this.db);
    return new Map(rows.map((r) => [`${r.conversation_id}\u0000${r.sender_id}\u0000${r.client_msg_id}`, { seq: Number(r.seq) }]));
  }

  async isMember(conversationId: string, userId: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('conversation_members')
      .select('role')
      .where('conversation_id', '=', conversationId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return row !== undefined;
  }

  async conversationIdsOf(userId: string): Promise<string[]> {
    const rows = await this.db.selectFrom('conversation_members').select('conversation_id').where('user_id', '=', userId).execute();
    return rows.map((r) => r.conversation_id);
  }

  /** The user's conversations with the sequence of each one's latest applied event (the resume index). */
  async memberships(userId: string): Promise<Membership[]> {
    const rows = await this.db
      .selectFrom('conversation_members as m')
      .innerJoin('conversations as c', 'c.id', 'm.conversation_id')
      .select(['c.id', 'c.last_seq', sql<Record<string, string | number>>`${openParked(this.shardIds)}`.as('parked'), 'm.joined_seq'])
      .where('m.user_id', '=', userId)
      .execute();
    return rows.map((r) => ({ id: r.id, lastSeq: this.lastSeqOf(r.id, r.last_seq, r.parked), joinedSeq: Number(r.joined_seq) }));
  }

  /**
   * The resume index and the read model's position in one statement, so both
   * come from the same snapshot: when `checkpoints` already cover the range a
   * resume needs, it need not wait for the projector and ask again. Concurrent
   * resumes (a reconnect storm) share one query per batch of users.
   */
  resumeIndex(userId: string): Promise<ResumeIndex> {
    return this.resumeIndexes.load(userId);
  }

  private readonly resumeIndexes = new NextCallBatcher<string, ResumeIndex>(
    (userIds) => this.resumeIndexBatch(userIds),
    () => ({ checkpoints: this.shardIds.map(() => 0), memberships: [] }),
    500,
    // A few at once: the pool has connections to spare, and a storm's batches then overlap.
    4,
  );

  private async resumeIndexBatch(userIds: string[]): Promise<Map<string, ResumeIndex>> {
    type Row = [string, string, string, Record<string, string | number>];
    const { rows } = await sql<{ checkpoints: Record<string, string> | null; memberships: Record<string, Row[]> }>`
      select
        (select json_object_agg(shard, seq::text) from projector_checkpoints where projector = ${READ_MODEL_PROJECTOR}) as checkpoints,
        coalesce((
          select json_object_agg(user_id, conversations) from (
            select m.user_id, json_agg(json_build_array(c.id, c.last_seq::text, m.joined_seq::text, ${openParked(this.shardIds)})) as conversations
            from conversation_members m join conversations c on c.id = m.conversation_id
            where m.user_id = any(${userIds})
            group by m.user_id
          ) per_user
        ), '{}'::json) as memberships`.execute(this.db);
    const row = rows[0]!;
    const checkpoints = this.checkpointsFrom(row.checkpoints);
    // Users without conversations are absent from the aggregate: the batcher answers them with none.
    return new Map(
      userIds.map((userId) => [
        userId,
        {
          checkpoints,
          memberships: (row.memberships[userId] ?? []).map(([id, lastSeq, joinedSeq, parked]) => ({
            id,
            lastSeq: this.lastSeqOf(id, lastSeq, parked),
            joinedSeq: Number(joinedSeq),
          })),
        },
      ]),
    );
  }

  /** Checkpoint rows (`{"<shard>": seq}`) as one position per shard; a shard without a row is at 0. */
  private checkpointsFrom(rows: Record<string, string | number> | null): number[] {
    return this.shardIds.map((k) => Number(rows?.[String(k)] ?? 0));
  }

  private checkpointValues: number[] = [];
  private checkpointAt = 0;
  private checkpointQuery: Promise<number[]> | null = null;

  /** The read model's position in every shard (one checkpoint row per shard), shared by concurrent waiters (one query per 10 ms at most). */
  private async checkpoints(): Promise<number[]> {
    if (Date.now() - this.checkpointAt < 10) return this.checkpointValues;
    this.checkpointQuery ??= this.db
      .selectFrom('projector_checkpoints')
      .select(['shard', 'seq'])
      .where('projector', '=', READ_MODEL_PROJECTOR)
      .execute()
      .then((rows) => {
        this.checkpointValues = this.checkpointsFrom(Object.fromEntries(rows.map((r) => [String(r.shard), Number(r.seq)])));
        this.checkpointAt = Date.now();
        return this.checkpointValues;
      })
      .finally(() => {
        this.checkpointQuery = null;
      });
    return this.checkpointQuery;
  }

  /**
   * Read-your-writes: waits until the read model has applied sequence `seq`
   * of `shard` (a conversation's positions are in its shard, see `shardOf`).
   * Without a shard (a bare position whose shard the caller cannot name), it
   * waits for every shard whose log reaches `seq` to have applied it, so the
   * write is visible whichever shard it went to. Answers `timeout` rather
   * than silently returning older data.
   */
  async waitFor(seq: number, shard?: number, timeoutMs = 5000): Promise<void> {
    const shards = shard === undefined ? this.shardIds : [shard];
    const targets = this.shardIds.map(() => 0);
    for (const k of shards) targets[k] = seq;
    if (this.reached(await this.checkpoints(), targets)) return;
    // A position no event has (yet) would be waited for until the timeout: a client error, answered now.
    const ends = this.shards.logEnd ? await Promise.all(shards.map((k) => this.shards.logEnd!(k))) : shards.map(() => Infinity);
    const last = Math.max(...ends);
    if (seq > last) throw new AppError('invalid_request', `position ${seq} is past the end of the log (${last}); pass a sequence the server returned`);
    // Shards whose log has not reached `seq` cannot have applied it; what they hold is what there is to wait for.
    shards.forEach((k, i) => (targets[k] = Math.min(seq, ends[i]!)));
    await this.waitForAll(targets, timeoutMs, `position ${seq}`);
  }

  /** The shard of a conversation's events (and of its positions). */
  shardOf(conversationId: string): number {
    return this.shards.shardOf(conversationId);
  }

  /** Waits until the read model has applied `untils[k]` in every shard k (a resume's range ends). */
  async waitForAll(untils: readonly number[], timeoutMs = 5000, what = `positions ${untils.join(', ')}`): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.reached(await this.checkpoints(), untils)) return;
      if (Date.now() >= deadline) throw new AppError('timeout', `the read model has not reached ${what} yet`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private reached(checkpoints: readonly number[], targets: readonly number[]): boolean {
    return targets.every((seq, k) => (checkpoints[k] ?? 0) >= seq);
  }
}
