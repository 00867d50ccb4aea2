import type { Kysely } from 'kysely';
import type { Database } from '../shared/db/schema.js';
import { AppError } from '../shared/errors.js';
import type { IdempotencyIndex } from '../shared/write/conversation-commands.js';

const READ_MODEL_PROJECTOR = 'read-model';

/** Membership, idempotency and read-your-writes lookups on the Postgres read model. */
export class ReadModel implements IdempotencyIndex {
  constructor(private readonly db: Kysely<Database>) {}

  async findMessage(conversationId: string, senderId: string, clientMsgId: string): Promise<{ seq: number } | null> {
    const row = await this.db
      .selectFrom('messages')
      .select('seq')
      .where('conversation_id', '=', conversationId)
      .where('sender_id', '=', senderId)
      .where('client_msg_id', '=', clientMsgId)
      .executeTakeFirst();
    return row ? { seq: Number(row.seq) } : null;
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
  async memberships(userId: string): Promise<{ id: string; lastSeq: number; joinedSeq: number }[]> {
    const rows = await this.db
      .selectFrom('conversation_members as m')
      .innerJoin('conversations as c', 'c.id', 'm.conversation_id')
      .select(['c.id', 'c.last_seq', 'm.joined_seq'])
      .where('m.user_id', '=', userId)
      .execute();
    return rows.map((r) => ({ id: r.id, lastSeq: Number(r.last_seq), joinedSeq: Number(r.joined_seq) }));
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
    for (;;) {
      if ((await this.checkpoint()) >= seq) return;
      if (Date.now() >= deadline) throw new AppError('timeout', `the read model has not reached position ${seq} yet`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}
