import type { ConversationEvent, ConversationKind, JoinPolicy, MemberRole, PostPolicy, UserId } from '../../../contracts/index.js';

export type MessageStatus = 'active' | 'recalled' | 'deleted';

export interface MessageInfo {
  seq: number;
  sender: UserId;
  at: number;
  status: MessageStatus;
  /** emoji -> users who reacted with it; absent until the first reaction. */
  reactions?: Map<string, Set<UserId>>;
}

/**
 * The write-side model of one conversation: what the rules need, folded from
 * the conversation's subject. `version` is the stream sequence of the last
 * event folded in; appends are conditional on it, so a decision made on
 * stale state can never be stored.
 *
 * Unlike the pure `decide`, `evolve` mutates: member and message maps of a
 * channel hold thousands of entries and copying them per event would make
 * every append O(size).
 */
export interface ConversationState {
  id: string;
  exists: boolean;
  kind: ConversationKind | null;
  title: string | null;
  members: Map<UserId, MemberRole>;
  postPolicy: PostPolicy;
  joinPolicy: JoinPolicy;
  /** 1:1 only: the members who currently block the other one. */
  blockedBy: Set<UserId>;
  messages: Map<string, MessageInfo>;
  /**
   * Sender -> client message id -> message id, for every message: a retried
   * send is recognised however late it comes, as long as the state holds the
   * conversation from its start. Nested rather than keyed by a joined string:
   * joining costs an allocation and a hash of a fresh string per send.
   */
  sentByClientId: Map<UserId, Map<string, string>>;
  /** The state was folded from the conversation's first event (false once the log's start aged out of retention). */
  fromStart: boolean;
  /**
   * Stream sequences of this subject the fold ignored: unreadable events and
   * tombstoned ones (fold.ts). Nearly always empty.
   */
  skipped: Set<number>;
  /** Sequences named by `log.tombstoned` events on this subject: ignored by the fold, also when folded again from the start. */
  tombstoned: Set<number>;
  /**
   * The stream sequence of the subject's last event, readable or not: appends
   * are conditional on it, so it must count every stored position.
   */
  version: number;
}

/** The message `sender` already stored under `clientMsgId`, if the state knows one. */
export function priorSend(state: ConversationState, sender: UserId, clientMsgId: string): { messageId: string; info: MessageInfo } | null {
  const messageId = state.sentByClientId.get(sender)?.get(clientMsgId);
  const info = messageId === undefined ? undefined : state.messages.get(messageId);
  return info ? { messageId: messageId!, info } : null;
}

export function emptyConversation(id: string): ConversationState {
  return {
    id,
    exists: false,
    kind: null,
    title: null,
    members: new Map(),
    postPolicy: 'everyone',
    joinPolicy: 'invite',
    blockedBy: new Set(),
    messages: new Map(),
    sentByClientId: new Map(),
    fromStart: false,
    skipped: new Set(),
    tombstoned: new Set(),
    version: 0,
  };
}

export function ownerOf(state: ConversationState): UserId | null {
  for (const [user, role] of state.members) if (role === 'owner') return user;
  return null;
}

/** Folds `event`, stored at stream sequence `seq`, into `state` (in place). */
export function evolve(state: ConversationState, event: ConversationEvent, seq: number): void {
  state.version = seq;
  switch (event.type) {
    case 'conversation.created': {
      const d = event.data;
      state.exists = true;
      state.fromStart = true;
      state.kind = d.kind;
      state.title = d.title;
      state.members = new Map(d.members.map((m) => [m.userId, m.role]));
      if (d.postPolicy) state.postPolicy = d.postPolicy;
      if (d.joinPolicy) state.joinPolicy = d.joinPolicy;
      return;
    }
    case 'conversation.renamed':
      state.title = event.data.title;
      return;
    case 'channel.policies_changed':
      state.postPolicy = event.data.postPolicy;
      state.joinPolicy = event.data.joinPolicy;
      return;
    case 'members.added':
      for (const m of event.data.members) state.members.set(m.userId, m.role);
      return;
    case 'member.removed':
      state.members.delete(event.data.userId);
      return;
    case 'member.role_changed':
      state.members.set(event.data.userId, event.data.role);
      return;
    case 'ownership.transferred':
      state.members.set(event.data.from, 'admin');
      state.members.set(event.data.to, 'owner');
      return;
    case 'message.sent': {
      state.messages.set(event.data.messageId, { seq, sender: event.actor, at: event.at, status: 'active' });
      let bySender = state.sentByClientId.get(event.actor);
      if (!bySender) state.sentByClientId.set(event.actor, (bySender = new Map()));
      bySender.set(event.data.clientMsgId, event.data.messageId);
      return;
    }
    case 'message.edited':
      return;
    case 'message.recalled':
    case 'message.deleted': {
      const m = state.messages.get(event.data.target.messageId);
      if (m) {
        m.status = event.type === 'message.recalled' ? 'recalled' : 'deleted';
        delete m.reactions;
      }
      return;
    }
    case 'reaction.added': {
      const m = state.messages.get(event.data.target.messageId);
      if (!m) return;
      m.reactions ??= new Map();
      let users = m.reactions.get(event.data.emoji);
      if (!users) m.reactions.set(event.data.emoji, (users = new Set()));
      users.add(event.actor);
      return;
    }
    case 'reaction.removed': {
      const users = state.messages.get(event.data.target.messageId)?.reactions?.get(event.data.emoji);
      users?.delete(event.actor);
      if (users && users.size === 0) state.messages.get(event.data.target.messageId)!.reactions!.delete(event.data.emoji);
      return;
    }
    case 'direct.block_changed':
      if (event.data.blocked) state.blockedBy.add(event.data.blocker);
      else state.blockedBy.delete(event.data.blocker);
      return;
  }
}
