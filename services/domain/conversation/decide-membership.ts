import type { ConversationEvent, JoinPolicy, MemberRole, PostPolicy, UserId } from '../../../contracts/index.js';
import { AppError } from '../../runtime/errors.js';
import { isAdmin, requireMember, type DecideContext } from './decide-messages.js';
import { ownerOf, type ConversationState } from './state.js';

type Envelope = { v: 1; at: number; actor: UserId };
const envelope = (ctx: DecideContext): Envelope => ({ v: 1, at: ctx.now, actor: ctx.actor });

function requireGroupLike(state: ConversationState): void {
  if (state.kind === 'direct') throw new AppError('forbidden', 'a 1:1 conversation has exactly its two members; start a group from it instead');
}

export interface CreateInput {
  kind: 'direct' | 'group' | 'channel';
  title: string | null;
  members: { userId: UserId; role: MemberRole }[];
  postPolicy?: PostPolicy;
  joinPolicy?: JoinPolicy;
  fromConversationId?: string;
}

export function decideCreate(state: ConversationState, input: CreateInput, ctx: DecideContext): ConversationEvent {
  if (state.exists) throw new AppError('conflict', `conversation ${state.id} already exists`);
  if (!input.members.some((m) => m.userId === ctx.actor)) throw new AppError('forbidden', 'the creator must be a member');
  return {
    type: 'conversation.created',
    ...envelope(ctx),
    data: {
      conversationId: state.id,
      kind: input.kind,
      title: input.title,
      members: input.members,
      ...(input.postPolicy ? { postPolicy: input.postPolicy } : {}),
      ...(input.joinPolicy ? { joinPolicy: input.joinPolicy } : {}),
      ...(input.fromConversationId ? { fromConversationId: input.fromConversationId } : {}),
    },
  };
}

export function decideAddMembers(state: ConversationState, userIds: UserId[], ctx: DecideContext): ConversationEvent | null {
  requireMember(state, ctx.actor);
  requireGroupLike(state);
  if (!isAdmin(state, ctx.actor)) throw new AppError('forbidden', 'only admins and the owner may add members');
  const fresh = [...new Set(userIds)].filter((u) => !state.members.has(u));
  if (fresh.length === 0) return null;
  return {
    type: 'members.added',
    ...envelope(ctx),
    data: { conversationId: state.id, members: fresh.map((userId) => ({ userId, role: 'member' as const })), self: false },
  };
}

export function decideJoin(state: ConversationState, ctx: DecideContext): ConversationEvent | null {
  if (!state.exists || state.kind !== 'channel' || state.joinPolicy !== 'open') {
    if (state.members.has(ctx.actor)) return null;
    throw new AppError('forbidden', 'only open channels can be joined without an invitation');
  }
  if (state.members.has(ctx.actor)) return null;
  return { type: 'members.added', ...envelope(ctx), data: { conversationId: state.id, members: [{ userId: ctx.actor, role: 'member' }], self: true } };
}

export function decideRemove(state: ConversationState, userId: UserId, ctx: DecideContext): ConversationEvent | null {
  requireMember(state, ctx.actor);
  requireGroupLike(state);
  if (userId === ctx.actor) return decideLeave(state, ctx);
  const actorRole = state.members.get(ctx.actor);
  const targetRole = state.members.get(userId);
  if (!targetRole) return null;
  if (targetRole === 'owner') throw new AppError('forbidden', 'the owner cannot be removed');
  if (actorRole === 'member' || (actorRole === 'admin' && targetRole === 'admin')) {
    throw new AppError('forbidden', 'admins remove members; only the owner removes admins');
  }
  return { type: 'member.removed', ...envelope(ctx), data: { conversationId: state.id, userId, self: false } };
}

export function decideLeave(state: ConversationState, ctx: DecideContext): ConversationEvent | null {
  if (!state.members.has(ctx.actor)) return null;
  requireGroupLike(state);
  if (state.members.get(ctx.actor) === 'owner' && state.members.size > 1) {
    throw new AppError('forbidden', 'transfer ownership before leaving');
  }
  return { type: 'member.removed', ...envelope(ctx), data: { conversationId: state.id, userId: ctx.actor, self: true } };
}

export function decideRename(state: ConversationState, title: string, ctx: DecideContext): ConversationEvent | null {
  requireMember(state, ctx.actor);
  requireGroupLike(state);
  if (!isAdmin(state, ctx.actor)) throw new AppError('forbidden', 'only admins and the owner may rename');
  if (state.title === title) return null;
  return { type: 'conversation.renamed', ...envelope(ctx), data: { conversationId: state.id, title } };
}

export function decideSetRole(state: ConversationState, userId: UserId, role: 'admin' | 'member', ctx: DecideContext): ConversationEvent | null {
  requireMember(state, ctx.actor);
  requireGroupLike(state);
  if (ownerOf(state) !== ctx.actor) throw new AppError('forbidden', 'only the owner changes roles');
  const current = state.members.get(userId);
  if (!current) throw new AppError('not_found', `${userId} is not a member`);
  if (current === 'owner') throw new AppError('forbidden', 'transfer ownership to change the owner');
  if (current === role) return null;
  return { type: 'member.role_changed', ...envelope(ctx), data: { conversationId: state.id, userId, role } };
}

export function decideTransfer(state: ConversationState, userId: UserId, ctx: DecideContext): ConversationEvent | null {
  requireMember(state, ctx.actor);
  requireGroupLike(state);
  if (ownerOf(state) !== ctx.actor) throw new AppError('forbidden', 'only the owner can transfer ownership');
  if (userId === ctx.actor) return null;
  if (!state.members.has(userId)) throw new AppError('not_found', `${userId} is not a member`);
  return { type: 'ownership.transferred', ...envelope(ctx), data: { conversationId: state.id, from: ctx.actor, to: userId } };
}

export function decidePolicies(state: ConversationState, postPolicy: PostPolicy, joinPolicy: JoinPolicy, ctx: DecideContext): ConversationEvent | null {
  requireMember(state, ctx.actor);
  if (state.kind !== 'channel') throw new AppError('forbidden', 'only channels have posting and joining policies');
  if (!isAdmin(state, ctx.actor)) throw new AppError('forbidden', 'only admins and the owner change channel policies');
  if (state.postPolicy === postPolicy && state.joinPolicy === joinPolicy) return null;
  return { type: 'channel.policies_changed', ...envelope(ctx), data: { conversationId: state.id, postPolicy, joinPolicy } };
}

/** 1:1 only; `blocker` is the authenticated user. */
export function decideDirectBlock(state: ConversationState, blocked: boolean, ctx: DecideContext): ConversationEvent | null {
  if (!state.exists || state.kind !== 'direct' || !state.members.has(ctx.actor)) return null;
  if (state.blockedBy.has(ctx.actor) === blocked) return null;
  return { type: 'direct.block_changed', ...envelope(ctx), data: { conversationId: state.id, blocker: ctx.actor, blocked } };
}
