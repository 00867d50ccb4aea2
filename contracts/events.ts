import { z } from 'zod';
import { ClientMsgId, ConversationId, MessageId, UserId } from './ids.js';
import { MessageText, Title } from './text.js';

/**
 * Events are the log. Each is stored as JSON on exactly one subject: the
 * conversation's (`conv.<id>`) or the user's (`user.<id>`). The subject is the
 * entity; `type` says what happened; `v` is the schema version of `data`.
 * Old versions stay readable forever: `parseStoredEvent` upcasts them to the
 * current shape, so projectors and clients only ever see the latest version.
 */

export const ConversationKind = z.enum(['direct', 'group']);
export type ConversationKind = z.infer<typeof ConversationKind>;

export const MemberRole = z.enum(['owner', 'admin', 'member']);
export type MemberRole = z.infer<typeof MemberRole>;

const envelope = {
  /** Milliseconds since the Unix epoch, server clock at append time. */
  at: z.number().int().nonnegative(),
  /** The authenticated user who caused the event (never taken from the client's frame). */
  actor: UserId,
};

export const ConversationCreated = z.strictObject({
  type: z.literal('conversation.created'),
  v: z.literal(1),
  ...envelope,
  data: z.strictObject({
    conversationId: ConversationId,
    kind: ConversationKind,
    title: Title.nullable(),
    members: z.array(z.strictObject({ userId: UserId, role: MemberRole })).min(1),
  }),
});

export const MessageSent = z.strictObject({
  type: z.literal('message.sent'),
  v: z.literal(1),
  ...envelope,
  data: z.strictObject({
    conversationId: ConversationId,
    messageId: MessageId,
    clientMsgId: ClientMsgId,
    text: MessageText,
  }),
});

/** Events stored on `conv.<id>`. */
export const ConversationEvent = z.discriminatedUnion('type', [ConversationCreated, MessageSent]);
export type ConversationEvent = z.infer<typeof ConversationEvent>;

/**
 * `membership.*` events are derived: the membership reactor appends one to a
 * user's subject for every membership change in a conversation event, so
 * every device of that user learns about conversations it joined or left
 * from its own subject. `cause` points at the conversation event.
 */
const cause = z.strictObject({ conversationSeq: z.number().int().positive() });

export const MembershipJoined = z.strictObject({
  type: z.literal('membership.joined'),
  v: z.literal(1),
  ...envelope,
  data: z.strictObject({ conversationId: ConversationId, kind: ConversationKind, role: MemberRole, cause }),
});

export const MembershipLeft = z.strictObject({
  type: z.literal('membership.left'),
  v: z.literal(1),
  ...envelope,
  data: z.strictObject({ conversationId: ConversationId, cause }),
});

/** Events stored on `user.<id>`. */
export const UserEvent = z.discriminatedUnion('type', [MembershipJoined, MembershipLeft]);
export type UserEvent = z.infer<typeof UserEvent>;

export const ParleyEvent = z.union([ConversationEvent, UserEvent]);
export type ParleyEvent = z.infer<typeof ParleyEvent>;
export type EventType = ParleyEvent['type'];

/**
 * Upcasters turn a stored event of an older version into the next version.
 * Keyed by `${type}@${version}`; applied repeatedly until the current version
 * parses. Empty while every event type is at version 1: the first schema
 * change adds its entry here together with a test that replays both versions.
 */
export const upcasters: Record<string, (old: Record<string, unknown>) => Record<string, unknown>> = {};

/** Parses a stored event of any version into the current shape, or throws a ZodError. */
export function parseStoredEvent(raw: unknown): ParleyEvent {
  let current = raw as Record<string, unknown>;
  for (let hops = 0; hops < 16; hops++) {
    const key = `${String(current?.type)}@${String(current?.v)}`;
    const upcast = upcasters[key];
    if (!upcast) break;
    current = upcast(current);
  }
  return ParleyEvent.parse(current);
}
