import { z } from 'zod';
import { ConversationKind } from './events/index.js';
import { ConversationId, UserId } from './ids.js';

/**
 * Notifications for members with no device online (docs/notifications.md):
 * the channels a device registers, the notifications the server keeps with
 * their delivery status, and the payload receivers get.
 */

/**
 * The URL's form only: a DNS name or a bracketed IPv6 literal (WHATWG URL
 * has already turned numeric IPv4 spellings into dotted decimal). Which
 * targets the server will contact (https only, no loopback, private,
 * link-local, metadata… addresses or internal names) is the target policy's
 * decision, at registration (`target_not_allowed`) and again at delivery
 * (docs/security.md, "Webhook targets").
 */
const UrlHost = new RegExp(`^(?:\\[[0-9a-f:.]+\\]|${z.regexes.hostname.source.slice(1, -1)})$`, 'i');
const HttpUrl = z.url({ protocol: /^https?$/, hostname: UrlHost }).max(2048);
/** base64url without padding, as browsers' PushSubscription.toJSON() gives it (padding tolerated). */
const Base64Url = z.string().regex(/^[A-Za-z0-9_-]+={0,2}$/, 'expected base64url');

/** A webhook: the server POSTs each notification as JSON, signed with `secret` (generated when omitted). */
export const WebhookChannelRequest = z.strictObject({
  kind: z.literal('webhook'),
  url: HttpUrl,
  secret: z.string().min(16).max(256).optional(),
});

/** A Web Push subscription exactly as the browser's `PushSubscription.toJSON()` gives it (expirationTime optional). */
export const WebPushChannelRequest = z.strictObject({
  kind: z.literal('webpush'),
  subscription: z.strictObject({
    endpoint: HttpUrl,
    expirationTime: z.number().int().nullable().optional(),
    keys: z.strictObject({
      /** The device's P-256 public key (65 bytes uncompressed). */
      p256dh: Base64Url.min(80).max(100),
      /** The 16-byte authentication secret. */
      auth: Base64Url.min(16).max(32),
    }),
  }),
});

/** POST /v1/notifications/channels. Registering the same URL (or push endpoint) again replaces it. */
export const RegisterChannelRequest = z.discriminatedUnion('kind', [WebhookChannelRequest, WebPushChannelRequest]);
export type RegisterChannelRequest = z.infer<typeof RegisterChannelRequest>;

export const ChannelKind = z.enum(['webhook', 'webpush']);
export type ChannelKind = z.infer<typeof ChannelKind>;

export const ChannelView = z.strictObject({
  id: z.string(),
  kind: ChannelKind,
  /** The webhook URL or the push service endpoint. */
  url: z.string(),
  createdAt: z.number().int(),
});
export type ChannelView = z.infer<typeof ChannelView>;

export const RegisterChannelResponse = z.strictObject({
  channel: ChannelView,
  /** Webhooks only: the signing secret. Shown here only; keep it to verify `Parley-Signature`. */
  secret: z.string().optional(),
  /** False when the same URL was registered before and has been replaced. */
  created: z.boolean(),
});
export type RegisterChannelResponse = z.infer<typeof RegisterChannelResponse>;

export const ChannelListResponse = z.strictObject({ channels: z.array(ChannelView) });
export type ChannelListResponse = z.infer<typeof ChannelListResponse>;

/** POST /v1/notifications/channels/:id/remove */
export const RemoveChannelResponse = z.strictObject({ removed: z.literal(true) });
export type RemoveChannelResponse = z.infer<typeof RemoveChannelResponse>;

/** GET /v1/notifications/vapid-public-key: pass as `applicationServerKey` to `pushManager.subscribe()`. */
export const VapidPublicKeyResponse = z.strictObject({ publicKey: z.string() });
export type VapidPublicKeyResponse = z.infer<typeof VapidPublicKeyResponse>;

/**
 * pending: waiting for its coalescing window to close, or being delivered
 * (retries included); sent: delivered to at least one channel; failed: every
 * channel failed (see `reason`); cleared: the conversation was read (or left,
 * or muted) before it was sent.
 */
export const NotificationStatus = z.enum(['pending', 'sent', 'failed', 'cleared']);
export type NotificationStatus = z.infer<typeof NotificationStatus>;

/** GET /v1/notifications?status=&limit=&before= : newest first; `before` is the last page's smallest id. */
export const NotificationListQuery = z.strictObject({
  status: NotificationStatus.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  before: z
    .string()
    .regex(/^[0-9]{1,18}$/)
    .optional(),
});
export type NotificationListQuery = z.infer<typeof NotificationListQuery>;

export const DeliveryView = z.strictObject({
  channelId: z.string(),
  kind: ChannelKind,
  status: z.enum(['pending', 'sending', 'sent', 'failed', 'cleared']),
  attempts: z.number().int().nonnegative(),
  lastError: z.string().nullable(),
  nextAttemptAt: z.number().int().nullable(),
  sentAt: z.number().int().nullable(),
});

export const NotificationView = z.strictObject({
  id: z.string(),
  conversationId: ConversationId,
  /** Stream sequences of the first and latest message it covers. */
  firstSeq: z.number().int().positive(),
  lastSeq: z.number().int().positive(),
  /** Messages coalesced into it. */
  count: z.number().int().positive(),
  mentioned: z.boolean(),
  status: NotificationStatus,
  reason: z.string().nullable(),
  createdAt: z.number().int(),
  /** When its coalescing window closes (delivery starts). */
  dueAt: z.number().int(),
  sentAt: z.number().int().nullable(),
  clearedAt: z.number().int().nullable(),
  deliveries: z.array(DeliveryView),
});
export type NotificationView = z.infer<typeof NotificationView>;

export const NotificationListResponse = z.strictObject({
  notifications: z.array(NotificationView),
  /** Pass as `before` for the next (older) page; null at the end. */
  nextCursor: z.string().nullable(),
});
export type NotificationListResponse = z.infer<typeof NotificationListResponse>;

/**
 * What a webhook receives as its JSON body, and what a Web Push message
 * decrypts to. `id` is stable across retries: receivers deduplicate on it.
 */
export const NotificationPayload = z.strictObject({
  type: z.literal('parley.notification'),
  v: z.literal(1),
  id: z.string(),
  userId: UserId,
  conversationId: ConversationId,
  conversationKind: ConversationKind,
  /** Group or channel title; null for 1:1s. */
  title: z.string().nullable(),
  count: z.number().int().positive(),
  mentioned: z.boolean(),
  senderId: UserId,
  /** The latest message's first 140 characters; null when it was recalled or deleted. */
  preview: z.string().nullable(),
  firstSeq: z.number().int().positive(),
  lastSeq: z.number().int().positive(),
  /** Time of the latest message (ms). */
  at: z.number().int(),
});
export type NotificationPayload = z.infer<typeof NotificationPayload>;
