import type { ConversationEvent, ConversationKind, MemberRole, UserId } from '../../../contracts/index.js';
import { AppError } from '../errors.js';

/**
 * The write-side model of one conversation: just what the rules need, folded
 * from the conversation's own subject. `version` is the stream sequence of the
 * last event folded in; appends are conditional on it, so a decision made on
 * stale state can never be stored.
 */
export interface ConversationState {
  id: string;
  exists: boolean;
  kind: ConversationKind | null;
  title: string | null;
  members: ReadonlyMap<UserId, MemberRole>;
  version: number;
}

export function emptyConversation(id: string): ConversationState {
  return { id, exists: false, kind: null, title: null, members: new Map(), version: 0 };
}

export type ConversationCommand =
  | { type: 'create'; kind: ConversationKind; title: string | null; members: { userId: UserId; role: MemberRole }[] }
  | { type: 'send'; messageId: string; clientMsgId: string; text: string };

export interface DecideContext {
  actor: UserId;
  now: number;
}

/** Pure: what the command turns into, given the current state; throws an AppError when a rule forbids it. */
export function decide(state: ConversationState, command: ConversationCommand, ctx: DecideContext): ConversationEvent[] {
  switch (command.type) {
    case 'create': {
      if (state.exists) throw new AppError('conflict', `conversation ${state.id} already exists`);
      if (!command.members.some((m) => m.userId === ctx.actor)) throw new AppError('forbidden', 'the creator must be a member');
      return [
        {
          type: 'conversation.created',
          v: 1,
          at: ctx.now,
          actor: ctx.actor,
          data: { conversationId: state.id, kind: command.kind, title: command.title, members: command.members },
        },
      ];
    }
    case 'send': {
      if (!state.exists) throw new AppError('not_found', `conversation ${state.id} does not exist`);
      if (!state.members.has(ctx.actor)) throw new AppError('not_member', `you are not a member of ${state.id}`);
      return [
        {
          type: 'message.sent',
          v: 1,
          at: ctx.now,
          actor: ctx.actor,
          data: { conversationId: state.id, messageId: command.messageId, clientMsgId: command.clientMsgId, text: command.text },
        },
      ];
    }
  }
}

/** Pure: the state after `event`, stored at stream sequence `seq`. */
export function evolve(state: ConversationState, event: ConversationEvent, seq: number): ConversationState {
  switch (event.type) {
    case 'conversation.created':
      return {
        ...state,
        exists: true,
        kind: event.data.kind,
        title: event.data.title,
        members: new Map(event.data.members.map((m) => [m.userId, m.role])),
        version: seq,
      };
    case 'message.sent':
      return { ...state, version: seq };
  }
}
