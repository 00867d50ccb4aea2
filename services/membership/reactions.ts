import { parseEntitySubject, type ConversationEvent, type UserEvent } from '../../contracts/index.js';
import type { Logger } from '../observability/logger.js';
import type { Runtime } from '../runtime/runtime.js';
import { decodeEventOfTypes } from '../event-log/event-store.js';
import { foldConversation } from '../commands/fold-conversation.js';

/**
 * The conversation events that change who is in it, and tombstones (which may
 * take such a change back); every other event (most are messages) is skipped
 * unvalidated.
 */
const MEMBERSHIP_CHANGES = new Set(['conversation.created', 'members.added', 'member.removed', 'log.tombstoned'] as const);
const CHANGES_OF_MEMBERS: ReadonlySet<string> = new Set(['conversation.created', 'members.added', 'member.removed']);

/** One stored conversation event, as the reactor of its shard received it. */
export interface ConversationEntry {
  /** The shard whose stream holds it: `seq` is a sequence of that stream. */
  shard: number;
  seq: number;
  subject: string;
  data: Uint8Array;
}

/**
 * The Nats-Msg-Id of a derived event: the conversation event's position and
 * the user. Dedup windows are per stream, and a user's stream receives
 * derived events from conversations of every shard, whose sequences collide:
 * so the shard is part of the id. Shard 0 keeps the original form (a
 * redelivery across an upgrade still deduplicates); `m<k>:` cannot be read as
 * `m:`, whatever the user id.
 */
export function derivedMsgId(shard: number, seq: number, userId: string): string {
  return shard === 0 ? `m:${seq}:${userId}` : `m${shard}:${seq}:${userId}`;
}

/** The conversation's kind, from its first event (the creation). */
async function kindOf(runtime: Runtime, conversationId: string): Promise<'direct' | 'group' | 'channel' | null> {
  for await (const stored of runtime.store.readSubject(runtime.subjects.conv(conversationId), 0)) {
    return stored.event.type === 'conversation.created' ? stored.event.data.kind : null;
  }
  return null;
}

/**
 * A tombstone naming a membership change already turned into user events:
 * the affected users get the membership the write side now sees (folded
 * without the tombstoned event), so their subjects agree with the
 * conversation's again. Unreadable events were never reacted to. The target
 * is on the tombstone's own subject, so in the same shard as `targetSeq`.
 */
async function afterTombstone(
  runtime: Runtime,
  log: Logger,
  subject: string,
  targetSeq: number,
  cause: { conversationSeq: number },
  base: { v: 1; at: number; actor: string },
): Promise<{ userId: string; event: UserEvent }[]> {
  const entity = parseEntitySubject(subject);
  const target = entity?.kind === 'conv' ? await runtime.store.getOn(subject, targetSeq) : null;
  if (!entity || !target || target.subject !== subject || !CHANGES_OF_MEMBERS.has(target.event.type)) return [];
  const e = target.event as ConversationEvent;
  const users =
    e.type === 'member.removed' ? [e.data.userId] : e.type === 'conversation.created' || e.type === 'members.added' ? e.data.members.map((m) => m.userId) : [];
  const state = await foldConversation(runtime.store, runtime.subjects, entity.id);
  log.info("membership change tombstoned: re-deriving the affected users' membership", { conversationId: entity.id, targetSeq, users: users.length });
  return users.map((userId) => {
    const role = state.members.get(userId);
    const data = { conversationId: entity.id, cause };
    const event: UserEvent = role
      ? { type: 'membership.joined', ...base, data: { ...data, kind: state.kind ?? 'group', role } }
      : { type: 'membership.left', ...base, data };
    return { userId, event };
  });
}

/**
 * Appends the user events one conversation event implies, each on its user's
 * subject (in that user's shard, whichever it is: the log routes by subject).
 * `cause.conversationSeq` is a sequence of the conversation's shard, as every
 * reader of it expects.
 */
export async function reactToConversationEvent(runtime: Runtime, log: Logger, entry: ConversationEntry): Promise<void> {
  let event;
  try {
    event = decodeEventOfTypes(entry.data, MEMBERSHIP_CHANGES);
    if (!event) return;
  } catch (err) {
    log.error('undecodable event skipped', { shard: entry.shard, seq: entry.seq, err });
    return;
  }
  const cause = { conversationSeq: entry.seq };
  const base = { v: 1 as const, at: event.at, actor: event.actor };
  let derived: { userId: string; event: UserEvent }[] = [];
  switch (event.type) {
    case 'conversation.created':
    case 'members.added': {
      const { conversationId } = event.data;
      const kind = event.type === 'conversation.created' ? event.data.kind : ((await kindOf(runtime, conversationId)) ?? 'group');
      derived = event.data.members.map((m) => ({
        userId: m.userId,
        event: { type: 'membership.joined', ...base, data: { conversationId, kind, role: m.role, cause } },
      }));
      break;
    }
    case 'member.removed':
      derived = [{ userId: event.data.userId, event: { type: 'membership.left', ...base, data: { conversationId: event.data.conversationId, cause } } }];
      break;
    case 'log.tombstoned':
      derived = await afterTombstone(runtime, log, entry.subject, event.data.seq, cause, base);
      break;
    default:
      return;
  }
  // Bounded concurrency: a channel created with thousands of members must not open thousands of requests at once.
  for (let i = 0; i < derived.length; i += 256) {
    await Promise.all(
      derived
        .slice(i, i + 256)
        .map((d) => runtime.store.append(runtime.subjects.user(d.userId), d.event, { msgId: derivedMsgId(entry.shard, entry.seq, d.userId) })),
    );
  }
}
