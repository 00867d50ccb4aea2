import type { ConversationKind } from '../../../contracts/index.js';

/** A member as the read model knows them, for deciding whether a message is worth a notification. */
export interface MemberState {
  userId: string;
  /** Stream sequence up to which the member has read the conversation. */
  readSeq: number;
  /** ms since the epoch, or null when not muted. */
  mutedUntil: number | null;
}

export interface MessageFacts {
  seq: number;
  /** Append time (ms). */
  at: number;
  senderId: string;
  mentions: readonly string[];
  kind: ConversationKind;
}

export type ChannelMessages = 'mentions' | 'all';

/**
 * Whether `member` should hear about `message` when offline: never their own
 * message, nothing they have already read, nothing while the conversation is
 * muted (judged at the message's time, so a replay decides the same way),
 * and in channels, where thousands of members would be paged for every post,
 * only messages that mention them unless configured otherwise. Presence is
 * checked separately (it is not part of the log).
 */
export function wantsNotification(member: MemberState, message: MessageFacts, channelMessages: ChannelMessages): { notify: boolean; mentioned: boolean } {
  const mentioned = message.mentions.includes(member.userId);
  if (member.userId === message.senderId) return { notify: false, mentioned };
  if (member.readSeq >= message.seq) return { notify: false, mentioned };
  if (member.mutedUntil !== null && member.mutedUntil > message.at) return { notify: false, mentioned };
  if (message.kind === 'channel' && channelMessages === 'mentions' && !mentioned) return { notify: false, mentioned };
  return { notify: true, mentioned };
}

/** Notification previews are short: lock screens show a line or two, and push payloads are limited to about 4 KB. */
export function previewOf(text: string, maxCodePoints = 140): string {
  const chars = [...text];
  return chars.length <= maxCodePoints ? text : `${chars.slice(0, maxCodePoints - 1).join('')}…`;
}
