import type { ColumnType, Generated } from 'kysely';

/** Tables of migrations/postgres/0004_notifications.ts, typed for kysely (BIGINT as strings). */
type Int8 = ColumnType<string, number | bigint | string, number | bigint | string>;
type Timestamptz = ColumnType<Date, Date | string, Date | string>;
type OptionalTimestamptz = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
type DefaultTimestamptz = ColumnType<Date, Date | string | undefined, Date | string>;

export type NotificationRowStatus = 'pending' | 'sent' | 'failed' | 'cleared';
export type DeliveryRowStatus = 'pending' | 'sending' | 'sent' | 'failed' | 'cleared';

export interface NotificationChannelsTable {
  id: string;
  user_id: string;
  kind: 'webhook' | 'webpush';
  url: string;
  secret: string | null;
  p256dh: string | null;
  auth: string | null;
  created_at: DefaultTimestamptz;
}

export interface NotificationsTable {
  id: Generated<string>;
  user_id: string;
  conversation_id: string;
  conversation_kind: 'direct' | 'group' | 'channel';
  title: string | null;
  first_seq: Int8;
  last_seq: Int8;
  message_count: number;
  mentioned: boolean;
  sender_id: string;
  preview: string | null;
  first_at: Timestamptz;
  last_at: Timestamptz;
  due_at: Timestamptz;
  status: NotificationRowStatus;
  reason: string | null;
  dispatched: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: DefaultTimestamptz;
  updated_at: DefaultTimestamptz;
  sent_at: OptionalTimestamptz;
  cleared_at: OptionalTimestamptz;
}

export interface NotificationDeliveriesTable {
  notification_id: Int8;
  channel_id: string;
  status: DeliveryRowStatus;
  attempts: ColumnType<number, number | undefined, number>;
  next_attempt_at: Timestamptz;
  lease_until: OptionalTimestamptz;
  last_error: string | null;
  sent_at: OptionalTimestamptz;
  updated_at: DefaultTimestamptz;
}

export interface NotifierMarksTable {
  shard: number;
  seq: Int8;
}

export interface NotificationVapidKeysTable {
  id: number;
  public_key: string;
  private_key: string;
  created_at: DefaultTimestamptz;
}

export interface NotificationTables {
  notification_channels: NotificationChannelsTable;
  notifications: NotificationsTable;
  notification_deliveries: NotificationDeliveriesTable;
  notifier_marks: NotifierMarksTable;
  notification_vapid_keys: NotificationVapidKeysTable;
}
