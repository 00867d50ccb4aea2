import { z } from 'zod';
import { ConversationKind, MemberRole } from './events.js';
import { ClientMsgId, ConversationId, MessageId, UserId } from './ids.js';
import { Title } from './text.js';

/** Request and response bodies of the HTTP API (docs/http-api.md). */

/** POST /v1/dev/token: only when the server runs with dev tokens enabled. */
export const DevTokenRequest = z.strictObject({
  userId: UserId,
  /** Lifetime in seconds; default 86400. */
  ttlSeconds: z.number().int().min(60).max(30 * 86400).optional(),
});
export const TokenResponse = z.strictObject({ token: z.string(), userId: UserId, expiresAt: z.number().int() });
export type TokenResponse = z.infer<typeof TokenResponse>;

/** Most members a group can be created with in one request. */
export const MAX_INITIAL_MEMBERS = 1000;

/** POST /v1/conversations */
export const CreateConversationRequest = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('direct'), peer: UserId }),
  z.strictObject({
    kind: z.literal('group'),
    title: Title,
    /** Other initial members; the creator is always added, as owner. */
    members: z.array(UserId).max(MAX_INITIAL_MEMBERS),
  }),
]);
export type CreateConversationRequest = z.infer<typeof CreateConversationRequest>;

export const CreateConversationResponse = z.strictObject({
  conversationId: ConversationId,
  kind: ConversationKind,
  /** False when the 1:1 already existed: its id is returned instead. */
  created: z.boolean(),
  /** Stream sequence of the conversation.created event (pass as `after` to read your own write). */
  seq: z.number().int().positive(),
});
export type CreateConversationResponse = z.infer<typeof CreateConversationResponse>;

export const MessageView = z.strictObject({
  conversationId: ConversationId,
  messageId: MessageId,
  seq: z.number().int().positive(),
  senderId: UserId,
  clientMsgId: ClientMsgId,
  text: z.string(),
  at: z.number().int(),
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
  createdAt: z.number().int(),
  lastActivityAt: z.number().int(),
  lastMessage: MessageView.nullable(),
});
export type ConversationSummary = z.infer<typeof ConversationSummary>;

/** Query of GET /v1/conversations/:id/messages. `after` waits (up to 5 s) until the read model includes that stream sequence. */
export const HistoryQuery = z.strictObject({
  before: z.string().regex(/^[0-9]{1,16}$/).optional(),
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

/** GET /healthz: 200 when every dependency is ok, 503 otherwise (`down` names the failing ones). */
export const HealthResponse = z.strictObject({
  status: z.enum(['ok', 'down']),
  down: z.array(z.string()),
  checks: z.record(z.string(), DependencyHealth),
});
export type HealthResponse = z.infer<typeof HealthResponse>;
