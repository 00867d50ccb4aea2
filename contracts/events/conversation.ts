import { z } from 'zod';
import { ClientMsgId, ConversationId, MessageId, UserId } from '../ids.js';
import { MessageText, Title } from '../text.js';
import { AttachmentRef, ConversationKind, Emoji, envelope, JoinPolicy, MemberRole, MessageRef, PostPolicy } from './common.js';

/** Events stored on `conv.<id>`. `data.conversationId` always equals the subject's id. */

const event = <T extends string, D extends z.ZodRawShape>(type: T, data: D) =>
  z.strictObject({ type: z.literal(type), v: z.literal(1), ...envelope, data: z.strictObject({ conversationId: ConversationId, ...data }) });

const Member = z.strictObject({ userId: UserId, role: MemberRole });

export const ConversationCreated = event('conversation.created', {
  kind: ConversationKind,
  title: Title.nullable(),
  members: z.array(Member).min(1),
  /** Channels only. */
  postPolicy: PostPolicy.optional(),
  joinPolicy: JoinPolicy.optional(),
  /** Set when a group was started from a 1:1 (which stays as it is). */
  fromConversationId: ConversationId.optional(),
});

export const ConversationRenamed = event('conversation.renamed', { title: Title });
export const ChannelPoliciesChanged = event('channel.policies_changed', { postPolicy: PostPolicy, joinPolicy: JoinPolicy });

/** Added by someone else (invite), or `self: true` when joining an open channel. */
export const MembersAdded = event('members.added', { members: z.array(Member).min(1), self: z.boolean() });
/** Removed by an admin/owner (`self: false`) or left (`self: true`). */
export const MemberRemoved = event('member.removed', { userId: UserId, self: z.boolean() });
export const MemberRoleChanged = event('member.role_changed', { userId: UserId, role: z.enum(['admin', 'member']) });
/** The previous owner becomes an admin. */
export const OwnershipTransferred = event('ownership.transferred', { from: UserId, to: UserId });

export const MessageSent = event('message.sent', {
  messageId: MessageId,
  clientMsgId: ClientMsgId,
  text: MessageText,
  replyTo: MessageRef.optional(),
  /** Members mentioned with @userId, parsed by the server. */
  mentions: z.array(UserId).max(100).optional(),
  attachments: z.array(AttachmentRef).max(10).optional(),
});

export const MessageEdited = event('message.edited', {
  target: MessageRef,
  text: MessageText,
  mentions: z.array(UserId).max(100).optional(),
});
/** By the sender within the recall window: the content disappears for everyone. */
export const MessageRecalled = event('message.recalled', { target: MessageRef });
/** By an admin or owner, at any time. */
export const MessageDeleted = event('message.deleted', { target: MessageRef });

export const ReactionAdded = event('reaction.added', { target: MessageRef, emoji: Emoji });
export const ReactionRemoved = event('reaction.removed', { target: MessageRef, emoji: Emoji });

/** 1:1 only: one side blocked the other; messages stop until unblocked. */
export const DirectBlockChanged = event('direct.block_changed', { blocker: UserId, blocked: z.boolean() });

export const ConversationEvent = z.discriminatedUnion('type', [
  ConversationCreated,
  ConversationRenamed,
  ChannelPoliciesChanged,
  MembersAdded,
  MemberRemoved,
  MemberRoleChanged,
  OwnershipTransferred,
  MessageSent,
  MessageEdited,
  MessageRecalled,
  MessageDeleted,
  ReactionAdded,
  ReactionRemoved,
  DirectBlockChanged,
]);
export type ConversationEvent = z.infer<typeof ConversationEvent>;
export type ConversationEventOf<T extends ConversationEvent['type']> = Extract<ConversationEvent, { type: T }>;
