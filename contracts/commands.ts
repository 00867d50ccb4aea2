import { z } from 'zod';
import { Emoji, JoinPolicy, PostPolicy } from './events/common.js';
import { ClientMsgId, ConversationId, MessageId, UserId } from './ids.js';
import { MessageText, Title } from './text.js';

/**
 * Commands: what a client asks for. Each is a WebSocket frame (`t` = command
 * name, plus a request id `id`) and, equally, a body of `POST /v1/commands`.
 * The server validates, authorises and turns each into at most one event.
 */

const conv = { conversationId: ConversationId };
const cmd = <T extends string, S extends z.ZodRawShape>(t: T, shape: S) => z.strictObject({ t: z.literal(t), ...shape });

/** Most members a group or channel can be created with, or added, in one command. */
export const MAX_MEMBERS_PER_COMMAND = 1000;

export const SendCommand = cmd('send', {
  ...conv,
  clientMsgId: ClientMsgId,
  text: MessageText,
  /** Reply to a message of the same conversation. */
  replyTo: MessageId.optional(),
  /**
   * Ids of uploaded attachments (the `id` POST /v1/attachments answered). Opaque to
   * clients: an id that names no upload answers `not_found`, whatever its spelling.
   */
  attachments: z.array(z.string().min(1).max(128)).max(10).optional(),
});
export const EditCommand = cmd('edit', { ...conv, messageId: MessageId, text: MessageText });
export const RecallCommand = cmd('recall', { ...conv, messageId: MessageId });
export const DeleteCommand = cmd('delete', { ...conv, messageId: MessageId });
export const ReactCommand = cmd('react', { ...conv, messageId: MessageId, emoji: Emoji });
export const UnreactCommand = cmd('unreact', { ...conv, messageId: MessageId, emoji: Emoji });

const CreateDirect = z.strictObject({ kind: z.literal('direct'), peer: UserId });
const CreateGroup = z.strictObject({
  kind: z.literal('group'),
  title: Title,
  /** Other initial members; the creator is always added, as owner. */
  members: z.array(UserId).max(MAX_MEMBERS_PER_COMMAND),
  /** Start the group from a 1:1 the creator is in: its peer is added too; the 1:1 stays. */
  fromConversationId: ConversationId.optional(),
});
const CreateChannel = z.strictObject({
  kind: z.literal('channel'),
  title: Title,
  members: z.array(UserId).max(MAX_MEMBERS_PER_COMMAND),
  postPolicy: PostPolicy.default('everyone'),
  joinPolicy: JoinPolicy.default('invite'),
});

/** Body of POST /v1/conversations. */
export const CreateConversationRequest = z.discriminatedUnion('kind', [CreateDirect, CreateGroup, CreateChannel]);
export type CreateConversationRequest = z.infer<typeof CreateConversationRequest>;

const t = { t: z.literal('create') };
export const CreateCommand = z.discriminatedUnion('kind', [CreateDirect.extend(t), CreateGroup.extend(t), CreateChannel.extend(t)]);

export const AddMembersCommand = cmd('add_members', { ...conv, userIds: z.array(UserId).min(1).max(MAX_MEMBERS_PER_COMMAND) });
export const RemoveMemberCommand = cmd('remove_member', { ...conv, userId: UserId });
export const LeaveCommand = cmd('leave', conv);
export const JoinCommand = cmd('join', conv);
export const RenameCommand = cmd('rename', { ...conv, title: Title });
export const SetRoleCommand = cmd('set_role', { ...conv, userId: UserId, role: z.enum(['admin', 'member']) });
export const TransferOwnershipCommand = cmd('transfer_ownership', { ...conv, userId: UserId });
export const SetChannelPoliciesCommand = cmd('set_channel_policies', { ...conv, postPolicy: PostPolicy, joinPolicy: JoinPolicy });

export const MarkReadCommand = cmd('mark_read', { ...conv, seq: z.number().int().positive() });
export const MarkDeliveredCommand = cmd('mark_delivered', { ...conv, seq: z.number().int().positive() });
export const SetPreferencesCommand = cmd('set_preferences', {
  ...conv,
  mutedUntil: z.number().int().nonnegative().nullable().optional(),
  pinned: z.boolean().optional(),
  archived: z.boolean().optional(),
});
export const BlockCommand = cmd('block', { userId: UserId });
export const UnblockCommand = cmd('unblock', { userId: UserId });

/** Ephemeral: shown to the conversation's other members for a few seconds; never stored, never acked. */
export const TypingCommand = cmd('typing', conv);

/** Every command, without the transport's request id. */
export const COMMAND_SCHEMAS = [
  SendCommand,
  EditCommand,
  RecallCommand,
  DeleteCommand,
  ReactCommand,
  UnreactCommand,
  AddMembersCommand,
  RemoveMemberCommand,
  LeaveCommand,
  JoinCommand,
  RenameCommand,
  SetRoleCommand,
  TransferOwnershipCommand,
  SetChannelPoliciesCommand,
  MarkReadCommand,
  MarkDeliveredCommand,
  SetPreferencesCommand,
  BlockCommand,
  UnblockCommand,
  TypingCommand,
] as const;

export const Command = z.union([CreateCommand, z.discriminatedUnion('t', COMMAND_SCHEMAS)]);
export type Command = z.infer<typeof Command>;
export type CommandName = Command['t'];
export const COMMAND_NAMES: readonly string[] = ['create', ...COMMAND_SCHEMAS.map((s) => s.shape.t.value)];
