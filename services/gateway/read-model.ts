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

  /**
   * Read-your-writes: waits until the read model has applied stream sequence
   * `seq`. Answers `timeout` rather than silently returning older data.
   */
  async waitFor(seq: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const row = await this.db
        .selectFrom('projector_checkpoints')
        .select('seq')
        .where('projector', '=', READ_MODEL_PROJECTOR)
        .where('shard', '=', 0)
        .executeTakeFirst();
      if (row && Number(row.seq) >= seq) return;
      if (Date.now() >= deadline) throw new AppError('timeout', `the read model has not reached position ${seq} yet`);
      await new Promise((r) => setTimeout(r, 15));
    }
  }
}
