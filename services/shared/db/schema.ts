import type { ColumnType, Generated } from 'kysely';

/**
 * Postgres read model tables, as the application sees them. The tables are
 * created by migrations/postgres; this file only types them for kysely.
 * BIGINT columns come back from `pg` as strings and are converted at the edge.
 */
type Int8 = ColumnType<string, number | bigint | string, number | bigint | string>;
type Timestamptz = ColumnType<Date, Date | string, Date | string>;

export interface ConversationsTable {
  id: string;
  kind: 'direct' | 'group';
  title: string | null;
  created_by: string;
  created_at: Timestamptz;
  /** Stream sequence of the latest event applied to this conversation. */
  last_seq: Int8;
  last_activity_at: Timestamptz;
  last_message_seq: Int8 | null;
  member_count: number;
}

export interface ConversationMembersTable {
  conversation_id: string;
  user_id: string;
  role: 'owner' | 'admin' | 'member';
  joined_seq: Int8;
  joined_at: Timestamptz;
}

export interface MessagesTable {
  conversation_id: string;
  seq: Int8;
  message_id: Int8;
  sender_id: string;
  client_msg_id: string;
  text: string;
  created_at: Timestamptz;
}

export interface ProjectorCheckpointsTable {
  projector: string;
  shard: number;
  epoch: string;
  seq: Int8;
  updated_at: Generated<Timestamptz>;
}

export interface Database {
  conversations: ConversationsTable;
  conversation_members: ConversationMembersTable;
  messages: MessagesTable;
  projector_checkpoints: ProjectorCheckpointsTable;
}
