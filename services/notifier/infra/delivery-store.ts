import { sql, type Kysely } from 'kysely';
import type { Database } from '../../read-store/schema.js';

/** A claimed delivery with what is needed to send it. */
export interface ClaimedDelivery {
  notificationId: string;
  channelId: string;
  attempts: number;
  channel: { kind: 'webhook' | 'webpush'; url: string; secret: string | null; p256dh: string | null; auth: string | null };
  notification: {
    userId: string;
    conversationId: string;
    conversationKind: 'direct' | 'group' | 'channel';
    title: string | null;
    firstSeq: number;
    lastSeq: number;
    count: number;
    mentioned: boolean;
    senderId: string;
    preview: string | null;
    lastAt: number;
  };
}

/**
 * The delivery loop's SQL. Every transition is a conditional UPDATE on the
 * row's status, so two loops (or a loop and a clear) never both win, and
 * only pending rows are ever sent: nothing a replay leaves behind can be.
 */
export class DeliveryStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Closes due windows: one pending delivery per channel the user has now. Returns how many windows closed. */
  async dispatchDue(limit = 200): Promise<number> {
    const r = await sql<{ n: string }>`
      with due as (select id from notifications where status = 'pending' and not dispatched and due_at <= now() order by due_at limit ${limit} for update skip locked),
      marked as (update notifications n set dispatched = true, updated_at = now() from due where n.id = due.id returning n.id, n.user_id),
      inserted as (insert into notification_deliveries (notification_id, channel_id, status, attempts, next_attempt_at)
        select marked.id, c.id, 'pending', 0, now() from marked join notification_channels c on c.user_id = marked.user_id
        on conflict do nothing returning 1)
      select (select count(*) from marked) as n`.execute(this.db);
    return Number(r.rows[0]?.n ?? 0);
  }

  /**
   * Claims due deliveries of still-pending notifications: `sending` with a
   * lease and one more attempt. A lease that runs out (the process died
   * mid-send) makes the row claimable again, so a crash can repeat an
   * attempt; receivers deduplicate on the notification id.
   */
  async claim(limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
    if (limit <= 0) return [];
    const r = await sql<Record<string, any>>`
      with picked as (
        select d.notification_id, d.channel_id from notification_deliveries d join notifications n on n.id = d.notification_id
        where n.status = 'pending' and ((d.status = 'pending' and d.next_attempt_at <= now()) or (d.status = 'sending' and d.lease_until < now()))
        order by d.next_attempt_at limit ${limit} for update of d skip locked)
      update notification_deliveries d set status = 'sending', attempts = d.attempts + 1, lease_until = now() + make_interval(secs => ${leaseMs / 1000}), updated_at = now()
      from picked, notifications n, notification_channels c
      where d.notification_id = picked.notification_id and d.channel_id = picked.channel_id and n.id = d.notification_id and c.id = d.channel_id
      returning d.notification_id, d.channel_id, d.attempts, c.kind, c.url, c.secret, c.p256dh, c.auth, n.user_id, n.conversation_id, n.conversation_kind,
        n.title, n.first_seq, n.last_seq, n.message_count, n.mentioned, n.sender_id, n.preview, n.last_at`.execute(this.db);
    return r.rows.map((x) => ({
      notificationId: String(x.notification_id),
      channelId: x.channel_id,
      attempts: x.attempts,
      channel: { kind: x.kind, url: x.url, secret: x.secret, p256dh: x.p256dh, auth: x.auth },
      notification: {
        userId: x.user_id,
        conversationId: x.conversation_id,
        conversationKind: x.conversation_kind,
        title: x.title,
        firstSeq: Number(x.first_seq),
        lastSeq: Number(x.last_seq),
        count: x.message_count,
        mentioned: x.mentioned,
        senderId: x.sender_id,
        preview: x.preview,
        lastAt: (x.last_at as Date).getTime(),
      },
    }));
  }

  /** Gives a claim back without counting it as an attempt (the channel's rate limit said wait). */
  async postpone(d: ClaimedDelivery, delayMs: number): Promise<void> {
    await this.finish(d, { status: 'pending', attempts: sql`attempts - 1`, next_attempt_at: sql`now() + make_interval(secs => ${delayMs / 1000})` });
  }

  async markSent(d: ClaimedDelivery): Promise<void> {
    await this.finish(d, { status: 'sent', sent_at: sql`now()`, last_error: null });
  }

  async retryLater(d: ClaimedDelivery, delayMs: number, error: string): Promise<void> {
    await this.finish(d, { status: 'pending', last_error: error, next_attempt_at: sql`now() + make_interval(secs => ${delayMs / 1000})` });
  }

  async markFailed(d: ClaimedDelivery, error: string): Promise<void> {
    await this.finish(d, { status: 'failed', last_error: error });
  }

  /** The push service says the subscription is gone: the channel is removed (its deliveries with it). */
  async removeChannel(channelId: string): Promise<void> {
    await this.db.deleteFrom('notification_channels').where('id', '=', channelId).execute();
  }

  private async finish(d: ClaimedDelivery, set: Record<string, unknown>): Promise<void> {
    await this.db
      .updateTable('notification_deliveries')
      .set({ ...set, lease_until: null, updated_at: sql`now()` } as never)
      .where('notification_id', '=', d.notificationId)
      .where('channel_id', '=', d.channelId)
      .where('status', '=', 'sending')
      .execute();
  }

  /**
   * Settles notifications none of whose deliveries is still open: `sent` when
   * one channel got it, otherwise `failed` with the channels' errors (or
   * because the user has no channel left).
   */
  async settle(limit = 500): Promise<number> {
    const r = await sql`
      with done as (
        select n.id, bool_or(d.status = 'sent') as any_sent, max(d.sent_at) as sent_at,
          string_agg(d.channel_id || ': ' || d.last_error, '; ') filter (where d.status = 'failed') as errors
        from notifications n left join notification_deliveries d on d.notification_id = n.id
        where n.status = 'pending' and n.dispatched
        group by n.id
        having count(*) filter (where d.status in ('pending', 'sending')) = 0
        limit ${limit})
      update notifications n set status = case when done.any_sent then 'sent' else 'failed' end, sent_at = done.sent_at, updated_at = now(),
        reason = case when done.any_sent then null else left(coalesce(done.errors, 'no notification channel registered'), 2000) end
      from done where n.id = done.id and n.status = 'pending'`.execute(this.db);
    return Number(r.numAffectedRows ?? 0n);
  }
}
