import { z } from 'zod';
import { AttachmentRef, ConversationKind, JoinPolicy, MemberRole, PostPolicy } from './events/index.js';
import { ClientMsgId, ConversationId, MessageId, UserId } from './ids.js';
import { Title } from './text.js';

/** Request and response bodies of the HTTP API (docs/http-api.md). */

/** POST /v1/dev/token: only when the server runs with dev tokens enabled. */
export const DevTokenRequest = z.strictObject({
  userId: UserId,
  /** Lifetime in seconds; default 86400. */
  ttlSeconds: z
    .number()
    .int()
    .min(60)
    .max(30 * 86400)
    .optional(),
});
export const TokenResponse = z.strictObject({
  token: z.string(),
  userId: UserId,
  /** When the token expires, in milliseconds since the epoch (like every time in the protocol; the JWT's own `exp` claim is in seconds). */
  expiresAt: z.number().int().positive(),
});
export type TokenResponse = z.infer<typeof TokenResponse>;

export { CreateConversationRequest } from './commands.js';

export const CreateConversationResponse = z.strictObject({
  conversationId: ConversationId,
  kind: ConversationKind,
  /** False when the 1:1 already existed: its id is returned instead. */
  created: z.boolean(),
  /** Stream sequence of the conversation.created event (pass as `after` to read your own write). */
  seq: z.number().int().positive(),
});
export type CreateConversationResponse = z.infer<typeof CreateConversationResponse>;

export const ReactionSummary = z.strictObject({
  emoji: z.string(),
  count: z.number().int().positive(),
  /** Up to 20 of the users who reacted, earliest first. */
  users: z.array(UserId),
  /** Whether the requesting user is among them. */
  mine: z.boolean(),
});

export const MessageView = z.strictObject({
  conversationId: ConversationId,
  messageId: MessageId,
  seq: z.number().int().positive(),
  senderId: UserId,
  clientMsgId: ClientMsgId,
  /** Empty for recalled and deleted messages (their tombstones). */
  text: z.string(),
  at: z.number().int(),
  status: z.enum(['active', 'recalled', 'deleted']),
  editedAt: z.number().int().nullable(),
  editCount: z.number().int().nonnegative(),
  replyTo: z.strictObject({ messageId: MessageId, seq: z.number().int(), senderId: UserId.nullable(), preview: z.string().nullable() }).nullable(),
  mentions: z.array(UserId),
  attachments: z.array(AttachmentRef),
  reactions: z.array(ReactionSummary),
});
export type MessageView = z.infer<typeof MessageView>;

export const ConversationSummary = z.strictObject({
  conversationId: ConversationId,
  kind: ConversationKind,
  title: z.string().nullable(),
  /** For 1:1 conversations, the other member. */
  peer: UserId.nullable(),
  role: MemberRole,
  memberCount: z.number().int().nonnegative(),
  postPolicy: PostPolicy,
  joinPolicy: JoinPolicy,
  /** Messages after the user's read marker, not counting their own. */
  unread: z.number().int().nonnegative(),
  /** Of those, messages that mention the user. */
  mentions: z.number().int().nonnegative(),
  readSeq: z.number().int().nonnegative(),
  mutedUntil: z.number().int().nullable(),
  pinned: z.boolean(),
  archived: z.boolean(),
  createdAt: z.number().int(),
  lastActivityAt: z.number().int(),
  lastMessage: MessageView.nullable(),
});
export type ConversationSummary = z.infer<typeof ConversationSummary>;

/** Query of GET /v1/conversations/:id/messages. `after` waits (up to 5 s) until the read model includes that stream sequence. */
export const HistoryQuery = z.strictObject({
  before: z
    .string()
    .regex(/^[0-9]{1,16}$/)
    .optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  after: z.coerce.number().int().nonnegative().optional(),
});
export type HistoryQuery = z.infer<typeof HistoryQuery>;

export const HistoryResponse = z.strictObject({
  messages: z.array(MessageView),
  /** Pass as `before` for the next (older) page; null when this page reaches the first message. */
  nextCursor: z.string().nullable(),
});
export type HistoryResponse = z.infer<typeof HistoryResponse>;

export const ConversationListQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  /** `true` lists archived conversations instead of the others. */
  archived: z.enum(['true', 'false']).default('false'),
  /** Opaque cursor from the previous page. */
  cursor: z.string().max(200).optional(),
  after: z.coerce.number().int().nonnegative().optional(),
});
export type ConversationListQuery = z.infer<typeof ConversationListQuery>;

export const ConversationListResponse = z.strictObject({
  conversations: z.array(ConversationSummary),
  nextCursor: z.string().nullable(),
});
export type ConversationListResponse = z.infer<typeof ConversationListResponse>;

const DependencyHealth = z.strictObject({ ok: z.boolean(), latencyMs: z.number().nonnegative(), detail: z.string().optional() });

/**
 * GET /healthz and GET /readyz answer the same body, every check with its state. /healthz: 200 when
 * every check is ok, 503 otherwise (`down` names the failing ones). /readyz: 200 when `ready`, 503
 * otherwise, for load balancers. `degraded`: every failing dependency answers but cannot store (disk
 * or storage limit full; its `detail` says which and why); reads still work, writes answer
 * `unavailable` until space returns.
 */
export const HealthResponse = z.strictObject({
  status: z.enum(['ok', 'degraded', 'down']),
  /** No check in `required` is down (degraded counts as ready): this process can do its roles' work. */
  ready: z.boolean(),
  /** The checks readiness depends on: the dependencies of the roles active in this process (a gateway: nats, postgres; ClickHouse only for an active analytics role). */
  required: z.array(z.string()),
  down: z.array(z.string()),
  checks: z.record(z.string(), DependencyHealth),
});
export type HealthResponse = z.infer<typeof HealthResponse>;

/** GET /v1/unread: totals across conversations (muted ones excluded from `total`). */
export const UnreadResponse = z.strictObject({
  total: z.number().int().nonnegative(),
  mentions: z.number().int().nonnegative(),
  conversations: z.array(
    z.strictObject({ conversationId: ConversationId, unread: z.number().int().nonnegative(), mentions: z.number().int().nonnegative(), muted: z.boolean() }),
  ),
});
export type UnreadResponse = z.infer<typeof UnreadResponse>;

/** GET /v1/search?q=&conversationId=&limit=&before= : messages the user may read, best match first within recency. */
export const SearchQuery = z.strictObject({
  q: z.string().min(1).max(200),
  conversationId: ConversationId.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  after: z.coerce.number().int().nonnegative().optional(),
});
export const SearchResponse = z.strictObject({ messages: z.array(MessageView) });
export type SearchResponse = z.infer<typeof SearchResponse>;

/** GET /v1/conversations/:id/messages/:seq/receipts: "seen by" and "delivered to" (not for channels). */
export const ReceiptsResponse = z.strictObject({
  seq: z.number().int().positive(),
  seenBy: z.array(UserId),
  deliveredTo: z.array(UserId),
});
export type ReceiptsResponse = z.infer<typeof ReceiptsResponse>;

/** GET /v1/conversations/:id/messages/:seq/versions: every version of an edited message, oldest first. */
export const VersionsResponse = z.strictObject({
  versions: z.array(z.strictObject({ version: z.number().int().nonnegative(), text: z.string(), at: z.number().int() })),
});
export type VersionsResponse = z.infer<typeof VersionsResponse>;

/** GET /v1/presence?userIds=a,b : only users who share a conversation with the caller are answered. */
export const PresenceQuery = z.strictObject({
  userIds: z
    .string()
    .min(1)
    .max(2000)
    .transform((s) => s.split(','))
    .pipe(z.array(UserId).min(1).max(100)),
});
export const PresenceResponse = z.strictObject({
  presence: z.array(z.strictObject({ userId: UserId, status: z.enum(['online', 'offline']), lastSeenAt: z.number().int().nullable() })),
});
export type PresenceResponse = z.infer<typeof PresenceResponse>;

/** POST /v1/attachments?name=<file name>, raw bytes as the body, Content-Type set. */
export const UploadQuery = z.strictObject({
  name: z
    .string()
    .min(1)
    .max(255)
    .refine((s) => !/[\u0000-\u001f\/\\]/.test(s), 'invalid file name'),
});
export const UploadResponse = AttachmentRef.extend({ deduplicated: z.boolean() });
export type UploadResponse = z.infer<typeof UploadResponse>;
