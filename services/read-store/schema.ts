import type { ColumnType, Generated } from 'kysely';
import type { NotificationTables } from './notification-schema.js';

/**
 * Postgres read model tables, as the application sees them. The tables are
 * created by migrations/postgres; this file only types them for kysely.
 * BIGINT columns come back from `pg` as strings and are converted at the edge.
 */
type Int8 = ColumnType<string, number | bigint | string, number | bigint | string>;
type Timestamptz = ColumnType<Date, Date | string, Date | string>;

export interface ConversationsTable {
  id: string;
  kind: 'direct' | 'group' | 'channel';
  title: string | null;
  created_by: string;
  created_at: Timestamptz;
  /** Stream sequence of the latest event applied to this conversation. */
  last_seq: Int8;
  last_activity_at: Timestamptz;
  last_message_seq: Int8 | null;
  member_count: number;
  post_policy: ColumnType<'everyone' | 'admins', 'everyone' | 'admins' | undefined, 'everyone' | 'admins'>;
  join_policy: ColumnType<'invite' | 'open', 'invite' | 'open' | undefined, 'invite' | 'open'>;
  from_conversation_id: ColumnType<string | null, string | null | undefined, string | null>;
  message_count: ColumnType<string, number | string | undefined, number | string>;
}

export interface ConversationMembersTable {
  conversation_id: string;
  user_id: string;
  role: 'owner' | 'admin' | 'member';
  joined_seq: Int8;
  joined_at: Timestamptz;
  read_seq: ColumnType<string, number | string | undefined, number | string>;
  delivered_seq: ColumnType<string, number | string | undefined, number | string>;
  muted_until: ColumnType<Date | null, Date | null | undefined, Date | null>;
  pinned: ColumnType<boolean, boolean | undefined, boolean>;
  archived: ColumnType<boolean, boolean | undefined, boolean>;
}

export interface MessagesTable {
  conversation_id: string;
  seq: Int8;
  message_id: Int8;
  sender_id: string;
  client_msg_id: string;
  text: string;
  created_at: Timestamptz;
  ordinal: ColumnType<string, number | string | undefined, number | string>;
  status: ColumnType<'active' | 'recalled' | 'deleted', 'active' | 'recalled' | 'deleted' | undefined, 'active' | 'recalled' | 'deleted'>;
  reply_to_seq: ColumnType<string | null, number | null | undefined, number | null>;
  reply_to_message_id: ColumnType<string | null, string | null | undefined, string | null>;
  reply_preview: ColumnType<string | null, string | null | undefined, string | null>;
  reply_sender_id: ColumnType<string | null, string | null | undefined, string | null>;
  mentions: ColumnType<string[], string[] | undefined, string[]>;
  attachments: ColumnType<unknown, string | undefined, string>;
  edited_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  edit_count: ColumnType<number, number | undefined, number>;
  search: ColumnType<string | null, never, never>;
}

export interface MessageVersionsTable {
  conversation_id: string;
  seq: Int8;
  version: number;
  text: string;
  created_at: Timestamptz;
}

export interface MessageReactionsTable {
  conversation_id: string;
  seq: Int8;
  emoji: string;
  user_id: string;
  reacted_at: Timestamptz;
}

export interface MessageMentionsTable {
  conversation_id: string;
  seq: Int8;
  user_id: string;
}

export interface MessageAttachmentsTable {
  attachment_id: string;
  conversation_id: string;
  seq: Int8;
}

export interface UserBlocksTable {
  user_id: string;
  blocked_user_id: string;
  blocked_at: Timestamptz;
}

export interface ProjectorCheckpointsTable {
  projector: string;
  shard: number;
  epoch: string;
  seq: Int8;
  updated_at: Generated<Timestamptz>;
}

/** Events a projector could not apply (see migrations/postgres/0002_parked_events.ts). */
export interface ParkedEventsTable {
  id: ColumnType<string, never, never>;
  projector: string;
  shard: number;
  seq: Int8;
  subject: string;
  /** `conv:<id>` or `user:<id>`. */
  entity: string;
  event_type: string | null;
  reason: string;
  payload: Buffer;
  attempts: number;
  /** `tombstoned`: the event was tombstoned (`parley log tombstone`), so it is never applied. */
  status: 'parked' | 'held' | 'redriven' | 'discarded' | 'tombstoned';
  parked_at: ColumnType<Date, Date | string | undefined, Date | string>;
  resolved_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

/** Log events every reader ignores (see migrations/postgres/0005_log_tombstones.ts). */
export interface LogTombstonesTable {
  stream: string;
  epoch: string;
  seq: Int8;
  subject: string;
  reason: string;
  by: string;
  /** The `log.tombstoned` event's own sequence. */
  tombstone_seq: Int8;
  created_at: Generated<Timestamptz>;
}

/** Notification tables are typed in notification-schema.ts. */
export interface Database extends NotificationTables {
  conversations: ConversationsTable;
  conversation_members: ConversationMembersTable;
  messages: MessagesTable;
  message_versions: MessageVersionsTable;
  message_reactions: MessageReactionsTable;
  message_mentions: MessageMentionsTable;
  message_attachments: MessageAttachmentsTable;
  user_blocks: UserBlocksTable;
  projector_checkpoints: ProjectorCheckpointsTable;
  parked_events: ParkedEventsTable;
  log_tombstones: LogTombstonesTable;
}
