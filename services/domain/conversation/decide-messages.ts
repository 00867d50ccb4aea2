import type { AttachmentRef, ConversationEvent, MessageRef, UserId } from '../../../contracts/index.js';
import { AppError } from '../../runtime/errors.js';
import { parseMentions } from '../mentions.js';
import type { ConversationState, MessageInfo } from './state.js';

export interface MessageRules {
  /** How long after sending the sender may recall a message. */
  recallWindowMs: number;
  /** Distinct emoji allowed on one message. */
  maxReactionsPerMessage: number;
}

export interface DecideContext {
  actor: UserId;
  now: number;
  rules: MessageRules;
}

type Envelope = { v: 1; at: number; actor: UserId };
const envelope = (ctx: DecideContext): Envelope => ({ v: 1, at: ctx.now, actor: ctx.actor });

export function requireMember(state: ConversationState, user: UserId): void {
  if (!state.exists) throw new AppError('not_member', 'you are not a member of this conversation');
  if (!state.members.has(user)) throw new AppError('not_member', 'you are not a member of this conversation');
}

export function isAdmin(state: ConversationState, user: UserId): boolean {
  const role = state.members.get(user);
  return role === 'owner' || role === 'admin';
}

function target(state: ConversationState, messageId: string): { ref: MessageRef; info: MessageInfo } {
  const info = state.messages.get(messageId);
  if (!info) throw new AppError('not_found', 'no such message in this conversation');
  return { ref: { messageId, seq: info.seq }, info };
}

export function decideSend(
  state: ConversationState,
  input: { messageId: string; clientMsgId: string; text: string; replyTo?: string; attachments?: AttachmentRef[] },
  ctx: DecideContext,
): ConversationEvent {
  requireMember(state, ctx.actor);
  if (state.kind === 'channel' && state.postPolicy === 'admins' && !isAdmin(state, ctx.actor)) {
    throw new AppError('forbidden', 'only admins may post in this channel');
  }
  if (state.kind === 'direct' && state.blockedBy.size > 0) throw new AppError('blocked', 'messages in this 1:1 are blocked');
  let replyTo: MessageRef | undefined;
  if (input.replyTo) {
    const t = target(state, input.replyTo);
    if (t.info.status !== 'active') throw new AppError('not_found', 'the message replied to was recalled or deleted');
    replyTo = t.ref;
  }
  const mentions = parseMentions(input.text, (u) => state.members.has(u) && u !== ctx.actor);
  return {
    type: 'message.sent',
    ...envelope(ctx),
    data: {
      conversationId: state.id,
      messageId: input.messageId,
      clientMsgId: input.clientMsgId,
      text: input.text,
      ...(replyTo ? { replyTo } : {}),
      ...(mentions.length ? { mentions } : {}),
      ...(input.attachments?.length ? { attachments: input.attachments } : {}),
    },
  };
}

export function decideEdit(state: ConversationState, messageId: string, text: string, ctx: DecideContext): ConversationEvent {
  requireMember(state, ctx.actor);
  const t = target(state, messageId);
  if (t.info.sender !== ctx.actor) throw new AppError('forbidden', 'only the sender may edit a message');
  if (t.info.status !== 'active') throw new AppError('not_found', 'the message was recalled or deleted');
  const mentions = parseMentions(text, (u) => state.members.has(u) && u !== ctx.actor);
  return { type: 'message.edited', ...envelope(ctx), data: { conversationId: state.id, target: t.ref, text, ...(mentions.length ? { mentions } : {}) } };
}

/** Returns null when there is nothing to do (already recalled). */
export function decideRecall(state: ConversationState, messageId: string, ctx: DecideContext): ConversationEvent | null {
  requireMember(state, ctx.actor);
  const t = target(state, messageId);
  if (t.info.sender !== ctx.actor) throw new AppError('forbidden', 'only the sender may recall a message');
  if (t.info.status === 'recalled') return null;
  if (t.info.status === 'deleted') throw new AppError('not_found', 'the message was deleted');
  if (ctx.now - t.info.at > ctx.rules.recallWindowMs) {
    throw new AppError('window_expired', `messages can be recalled within ${Math.round(ctx.rules.recallWindowMs / 1000)} s of sending`);
  }
  return { type: 'message.recalled', ...envelope(ctx), data: { conversationId: state.id, target: t.ref } };
}

export function decideDelete(state: ConversationState, messageId: string, ctx: DecideContext): ConversationEvent | null {
  requireMember(state, ctx.actor);
  if (!isAdmin(state, ctx.actor)) throw new AppError('forbidden', 'only admins and the owner may delete messages');
  const t = target(state, messageId);
  if (t.info.status === 'deleted') return null;
  return { type: 'message.deleted', ...envelope(ctx), data: { conversationId: state.id, target: t.ref } };
}

export function decideReaction(state: ConversationState, messageId: string, emoji: string, add: boolean, ctx: DecideContext): ConversationEvent | null {
  requireMember(state, ctx.actor);
  const t = target(state, messageId);
  if (t.info.status !== 'active') throw new AppError('not_found', 'the message was recalled or deleted');
  const users = t.info.reactions?.get(emoji);
  const has = users?.has(ctx.actor) ?? false;
  if (add === has) return null; // idempotent: already in the requested state
  if (add && !users && (t.info.reactions?.size ?? 0) >= ctx.rules.maxReactionsPerMessage) {
    throw new AppError('limit_exceeded', `a message can carry at most ${ctx.rules.maxReactionsPerMessage} different emoji`);
  }
  return { type: add ? 'reaction.added' : 'reaction.removed', ...envelope(ctx), data: { conversationId: state.id, target: t.ref, emoji } };
}
