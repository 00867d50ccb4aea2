import { sql, type Kysely } from 'kysely';
import type { Database } from '../read-store/schema.js';
import { AppError } from '../runtime/errors.js';
import { NextCallBatcher } from '../concurrency/next-call-batcher.js';
import type { IdempotencyIndex } from '../commands/conversation-commands.js';

const READ_MODEL_PROJECTOR = 'read-model';

export interface ResumeIndex {
  /** The read model's position when `memberships` was read. */
  checkpoint: number;
  memberships: Membership[];
}

/** A conversation of the user with the sequence of its latest applied event and of the user's join. */
export interface Membership {
  id: string;
  lastSeq: number;
  joinedSeq: number;
}

/**
 * A conversation's last event as far as resumes are concerned. While the read model's projector holds a
 * conversation back (an event parked, later ones held behind it), `conversations.last_seq` stops moving
 * although the log goes on; every event past it has an open parked/held row, so the highest of those is the
 * conversation's real last position, and a resume replays it from the log instead of skipping it.
 */
const effectiveLastSeq = sql`greatest(c.last_seq, coalesce((
  select max(p.seq) from parked_events p
  where p.projector = ${READ_MODEL_PROJECTOR} and p.shard = 0 and p.entity = 'conv:' || c.id and p.status in ('parked', 'held')
), 0))`;

/** Membership, idempotency and read-your-writes lookups on the Postgres read model. */
export class ReadModel implements IdempotencyIndex {
  /** `logEnd`: the event log's last sequence, so a position past it is refused instead of waited for. */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly logEnd?: () => Promise<number>,
  ) {}

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
      .select(['c.id', sql<string>`${effectiveLastSeq}`.as('last_seq'), 'm.joined_seq'])
      .where('m.user_id', '=', userId)
      .execute();
    return rows.map((r) => ({ id: r.id, lastSeq: Number(r.last_seq), joinedSeq: Number(r.joined_seq) }));
  }

  /**
   * The resume index and the read model's position in one statement, so both
   * come from the same snapshot: when `checkpoint` already covers the range a
   * resume needs, it need not wait for the projector and ask again. Concurrent
   * resumes (a reconnect storm) share one query per batch of users.
   */
  resumeIndex(userId: string): Promise<ResumeIndex> {
    return this.resumeIndexes.load(userId);
  }

  private readonly resumeIndexes = new NextCallBatcher<string, ResumeIndex>(
    (userIds) => this.resumeIndexBatch(userIds),
    () => ({ checkpoint: 0, memberships: [] }),
    500,
    // A few at once: the pool has connections to spare, and a storm's batches then overlap.
    4,
  );

  private async resumeIndexBatch(userIds: string[]): Promise<Map<string, ResumeIndex>> {
    const { rows } = await sql<{ checkpoint: string | null; memberships: Record<string, [string, string, string][]> }>`
      select
        (select seq from projector_checkpoints where projector = ${READ_MODEL_PROJECTOR} and shard = 0) as checkpoint,
        coalesce((
          select json_object_agg(user_id, conversations) from (
            select m.user_id, json_agg(json_build_array(c.id, (${effectiveLastSeq})::text, m.joined_seq::text)) as conversations
            from conversation_members m join conversations c on c.id = m.conversation_id
            where m.user_id = any(${userIds})
            group by m.user_id
          ) per_user
        ), '{}'::json) as memberships`.execute(this.db);
    const row = rows[0]!;
    const checkpoint = row.checkpoint === null ? 0 : Number(row.checkpoint);
    // Users without conversations are absent from the aggregate: the batcher answers them with none.
    return new Map(
      userIds.map((userId) => [
        userId,
        {
          checkpoint,
          memberships: (row.memberships[userId] ?? []).map(([id, lastSeq, joinedSeq]) => ({ id, lastSeq: Number(lastSeq), joinedSeq: Number(joinedSeq) })),
        },
      ]),
    );
  }

  private checkpointValue = 0;
  private checkpointAt = 0;
  private checkpointQuery: Promise<number> | null = null;

  /** The read model's position, shared by every concurrent waiter (one query per 10 ms at most). */
  private async checkpoint(): Promise<number> {
    if (Date.now() - this.checkpointAt < 10) return this.checkpointValue;
    this.checkpointQuery ??= this.db
      .selectFrom('projector_checkpoints')
      .select('seq')
      .where('projector', '=', READ_MODEL_PROJECTOR)
      .where('shard', '=', 0)
      .executeTakeFirst()
      .then((row) => {
        this.checkpointValue = row ? Number(row.seq) : 0;
        this.checkpointAt = Date.now();
        return this.checkpointValue;
      })
      .finally(() => {
        this.checkpointQuery = null;
      });
    return this.checkpointQuery;
  }

  /**
   * Read-your-writes: waits until the read model has applied stream sequence
   * `seq`. Answers `timeout` rather than silently returning older data.
   */
  async waitFor(seq: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    if ((await this.checkpoint()) >= seq) return;
    // A position no event has (yet) would be waited for until the timeout: a client error, answered now.
    const last = this.logEnd ? await this.logEnd() : Infinity;
    if (seq > last) throw new AppError('invalid_request', `position ${seq} is past the end of the log (${last}); pass a sequence the server returned`);
    for (;;) {
      if ((await this.checkpoint()) >= seq) return;
      if (Date.now() >= deadline) throw new AppError('timeout', `the read model has not reached position ${seq} yet`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}
