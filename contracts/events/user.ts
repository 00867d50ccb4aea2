import { z } from 'zod';
import { ConversationId, UserId } from '../ids.js';
import { ConversationKind, envelope, MemberRole } from './common.js';

/** Events stored on `user.<id>`: everything every device of that user must agree on. */

const event = <T extends string, D extends z.ZodRawShape>(type: T, data: D) =>
  z.strictObject({ type: z.literal(type), v: z.literal(1), ...envelope, data: z.strictObject(data) });

/**
 * Derived by the membership reactor from conversation events, so every device
 * learns about conversations it joined or left from its own subject. `cause`
 * points at the conversation event.
 */
const cause = z.strictObject({ conversationSeq: z.number().int().positive() });

export const MembershipJoined = event('membership.joined', { conversationId: ConversationId, kind: ConversationKind, role: MemberRole, cause });
export const MembershipLeft = event('membership.left', { conversationId: ConversationId, cause });

/** Read up to and including `seq` (a stream sequence of that conversation). Monotonic: lower values are ignored. */
export const ReadMarked = event('read.marked', { conversationId: ConversationId, seq: z.number().int().positive() });
/** Delivered to at least one device up to `seq`. Monotonic. */
export const DeliveredMarked = event('delivered.marked', { conversationId: ConversationId, seq: z.number().int().positive() });

/** Per-user conversation settings; each field present is set, absent fields keep their value. */
export const PreferencesSet = event('preferences.set', {
  conversationId: ConversationId,
  /** Muted until this time (ms since epoch); null unmutes. */
  mutedUntil: z.number().int().nonnegative().nullable().optional(),
  pinned: z.boolean().optional(),
  archived: z.boolean().optional(),
  /**
   * The conversation's sequence (its last event) when the write side checked
   * the membership this setting applies to. Absent in events written before it
   * was recorded. Lets readers order it with the conversation's events, which
   * with several shards are on another stream than the user's.
   */
  conversationSeq: z.number().int().positive().optional(),
});

export const UserBlocked = event('user.blocked', { userId: UserId });
export const UserUnblocked = event('user.unblocked', { userId: UserId });

export const UserEvent = z.discriminatedUnion('type', [
  MembershipJoined,
  MembershipLeft,
  ReadMarked,
  DeliveredMarked,
  PreferencesSet,
  UserBlocked,
  UserUnblocked,
]);
export type UserEvent = z.infer<typeof UserEvent>;
