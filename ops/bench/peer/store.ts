import pg from 'pg';

/**
 * The peer's Postgres store: conversations, members and messages, with the
 * same idempotency rule as Parley (one message per conversation, sender and
 * client message id). Commits are asynchronous (synchronous_commit=off), the
 * durability Parley's JetStream has with its default periodic fsync.
 */
export class PeerStore {
  private constructor(private readonly pool: pg.Pool) {}

  static async open(url: string): Promise<PeerStore> {
    const pool = new pg.Pool({ connectionString: url, max: 16, options: '-c synchronous_commit=off' });
    await pool.query(`
      CREATE TABLE IF NOT EXISTS peer_conversations (id BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now());
      CREATE TABLE IF NOT EXISTS peer_members (user_id TEXT NOT NULL, conversation_id BIGINT NOT NULL REFERENCES peer_conversations(id), PRIMARY KEY (user_id, conversation_id));
      CREATE TABLE IF NOT EXISTS peer_messages (
        id BIGSERIAL PRIMARY KEY,
        conversation_id BIGINT NOT NULL REFERENCES peer_conversations(id),
        sender_id TEXT NOT NULL,
        client_msg_id TEXT NOT NULL,
        text TEXT NOT NULL,
        at TIMESTAMPTZ NOT NULL DEFAULT now(),
        UNIQUE (conversation_id, sender_id, client_msg_id)
      );`);
    return new PeerStore(pool);
  }

  async createConversations(specs: { kind: string; members: string[] }[]): Promise<string[]> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const ids: string[] = [];
      for (const s of specs) {
        const r = await client.query<{ id: string }>('INSERT INTO peer_conversations (kind) VALUES ($1) RETURNING id', [s.kind]);
        const id = r.rows[0]!.id;
        await client.query('INSERT INTO peer_members (user_id, conversation_id) SELECT unnest($1::text[]), $2', [s.members, id]);
        ids.push(id);
      }
      await client.query('COMMIT');
      return ids;
    } catch (err) {
      await client.query('ROLLBACK');
      throw err;
    } finally {
      client.release();
    }
  }

  async conversationsOf(userId: string): Promise<string[]> {
    const r = await this.pool.query<{ conversation_id: string }>('SELECT conversation_id FROM peer_members WHERE user_id = $1', [userId]);
    return r.rows.map((row) => row.conversation_id);
  }

  /** Stores a message; a retried client message id returns the original. */
  async insertMessage(conversationId: string, senderId: string, clientMsgId: string, text: string): Promise<{ id: string; at: number; duplicate: boolean }> {
    const r = await this.pool.query<{ id: string; at: Date }>(
      'INSERT INTO peer_messages (conversation_id, sender_id, client_msg_id, text) VALUES ($1, $2, $3, $4) ON CONFLICT (conversation_id, sender_id, client_msg_id) DO NOTHING RETURNING id, at',
      [conversationId, senderId, clientMsgId, text],
    );
    if (r.rows[0]) return { id: r.rows[0].id, at: r.rows[0].at.getTime(), duplicate: false };
    const old = await this.pool.query<{ id: string; at: Date }>(
      'SELECT id, at FROM peer_messages WHERE conversation_id = $1 AND sender_id = $2 AND client_msg_id = $3',
      [conversationId, senderId, clientMsgId],
    );
    return { id: old.rows[0]!.id, at: old.rows[0]!.at.getTime(), duplicate: true };
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
