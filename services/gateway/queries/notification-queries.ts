import { randomBytes } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type {
  ChannelView,
  NotificationListQuery,
  NotificationListResponse,
  RegisterChannelRequest,
  RegisterChannelResponse,
} from '../../../contracts/index.js';
import type { Database } from '../../read-store/schema.js';
import { AppError } from '../../runtime/errors.js';
import { checkTargetUrl, TargetRefusedError, type TargetPolicy } from '../../outbound/target-policy.js';

/** Channels per user: a few devices each with a push subscription, plus some webhooks. */
export const MAX_CHANNELS_PER_USER = 20;

export interface NotificationQueriesOptions extends TargetPolicy {
  vapidPublicKey: () => Promise<string>;
}

const ms = (d: Date | null) => (d ? d.getTime() : null);

/** The gateway's side of notifications: channel registration and the status listing. */
export class NotificationQueries {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly options: NotificationQueriesOptions,
  ) {}

  vapidPublicKey(): Promise<string> {
    return this.options.vapidPublicKey();
  }

  async register(userId: string, req: RegisterChannelRequest): Promise<RegisterChannelResponse> {
    const url = targetUrl(req.kind === 'webhook' ? req.url : req.subscription.endpoint, this.options);
    if (req.kind === 'webpush') checkPushKeys(req.subscription.keys);
    const secret = req.kind === 'webhook' ? (req.secret ?? randomBytes(24).toString('base64url')) : null;
    const existing = await this.db
      .selectFrom('notification_channels')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('user_id', '=', userId)
      .where('url', '<>', url)
      .executeTakeFirstOrThrow();
    if (Number(existing.n) >= MAX_CHANNELS_PER_USER)
      throw new AppError('limit_exceeded', `at most ${MAX_CHANNELS_PER_USER} notification channels per user; remove one first`);
    const values = {
      kind: req.kind,
      secret,
      p256dh: req.kind === 'webpush' ? req.subscription.keys.p256dh : null,
      auth: req.kind === 'webpush' ? req.subscription.keys.auth : null,
    };
    // Re-registering a URL keeps its id, so deliveries already queued for it still go out, with the new keys.
    const row = await this.db
      .insertInto('notification_channels')
      .values({ id: `ch_${randomBytes(12).toString('base64url')}`, user_id: userId, url, ...values })
      .onConflict((oc) => oc.columns(['user_id', 'url']).doUpdateSet(values))
      .returning(['id', 'kind', 'url', 'created_at', sql<boolean>`(xmax = 0)`.as('inserted')])
      .executeTakeFirstOrThrow();
    const channel: ChannelView = { id: row.id, kind: row.kind, url: row.url, createdAt: row.created_at.getTime() };
    return { channel, created: row.inserted, ...(secret ? { secret } : {}) };
  }

  async channels(userId: string): Promise<ChannelView[]> {
    const rows = await this.db
      .selectFrom('notification_channels')
      .select(['id', 'kind', 'url', 'created_at'])
      .where('user_id', '=', userId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map((r) => ({ id: r.id, kind: r.kind, url: r.url, createdAt: r.created_at.getTime() }));
  }

  /** Removes the channel and its queued deliveries; false when the user has no such channel. */
  async remove(userId: string, channelId: string): Promise<boolean> {
    const r = await this.db.deleteFrom('notification_channels').where('id', '=', channelId).where('user_id', '=', userId).executeTakeFirst();
    return r.numDeletedRows > 0n;
  }

  async list(userId: string, q: NotificationListQuery): Promise<NotificationListResponse> {
    let query = this.db
      .selectFrom('notifications')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('id', 'desc')
      .limit(q.limit + 1);
    if (q.status) query = query.where('status', '=', q.status);
    if (q.before) query = query.where('id', '<', q.before);
    const rows = await query.execute();
    const page = rows.slice(0, q.limit);
    const ids = page.map((r) => r.id);
    const deliveries = ids.length
      ? await this.db
          .selectFrom('notification_deliveries as d')
          .innerJoin('notification_channels as c', 'c.id', 'd.channel_id')
          .select(['d.notification_id', 'd.channel_id', 'c.kind', 'd.status', 'd.attempts', 'd.last_error', 'd.next_attempt_at', 'd.sent_at'])
          .where('d.notification_id', 'in', ids)
          .orderBy('d.channel_id')
          .execute()
      : [];
    return {
      notifications: page.map((r) => ({
        id: String(r.id),
        conversationId: r.conversation_id,
        firstSeq: Number(r.first_seq),
        lastSeq: Number(r.last_seq),
        count: r.message_count,
        mentioned: r.mentioned,
        status: r.status,
        reason: r.reason,
        createdAt: r.created_at.getTime(),
        dueAt: r.due_at.getTime(),
        sentAt: ms(r.sent_at),
        clearedAt: ms(r.cleared_at),
        deliveries: deliveries
          .filter((d) => String(d.notification_id) === String(r.id))
          .map((d) => ({
            channelId: d.channel_id,
            kind: d.kind,
            status: d.status,
            attempts: d.attempts,
            lastError: d.last_error,
            nextAttemptAt: d.status === 'pending' ? d.next_attempt_at.getTime() : null,
            sentAt: ms(d.sent_at),
          })),
      })),
      nextCursor: rows.length > q.limit ? String(page[page.length - 1]!.id) : null,
    };
  }
}

/**
 * The URL as it will be contacted (WHATWG-normalised, so every spelling of
 * one target is one channel), or `target_not_allowed` when the target policy
 * refuses it (services/outbound/target-policy.ts). Names are not resolved
 * here: DNS can change after registration, so delivery checks the addresses
 * it connects to.
 */
function targetUrl(raw: string, policy: TargetPolicy): string {
  try {
    return checkTargetUrl(raw, { allowHttp: policy.allowHttp, allowPrivateTargets: policy.allowPrivateTargets }).href;
  } catch (err) {
    if (err instanceof TargetRefusedError) throw new AppError('target_not_allowed', `the server will not send notifications to this URL: ${err.reason}`);
    throw err;
  }
}

/** A push subscription whose keys are not a P-256 point and a 16-byte secret could never be encrypted for. */
function checkPushKeys(keys: { p256dh: string; auth: string }): void {
  const point = Buffer.from(keys.p256dh, 'base64url');
  if (point.length !== 65 || point[0] !== 0x04)
    throw new AppError('invalid_request', 'subscription.keys.p256dh must be an uncompressed P-256 public key (65 bytes)');
  if (Buffer.from(keys.auth, 'base64url').length !== 16) throw new AppError('invalid_request', 'subscription.keys.auth must be 16 bytes');
}
