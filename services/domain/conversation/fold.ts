import { ConversationEvent, type ParleyEvent } from '../../../contracts/index.js';
import { emptyConversation, evolve, type ConversationState } from './state.js';

const CONVERSATION_TYPES: ReadonlySet<string> = new Set(ConversationEvent.options.map((o) => o.shape.type.value));

/** One stored position of a conversation's subject: its event, or null when no schema version can read it. */
export interface FoldEntry {
  seq: number;
  event: ParleyEvent | null;
  /** Why the event cannot be read (when `event` is null). */
  reason?: string;
}

/**
 * What folding one position did. `skipped` positions carry a reason for the
 * operator's warning; `refold` means a tombstone named an event the state
 * already folded in, so the state must be folded again from the subject's
 * start with that event left out (foldAgain).
 */
export type FoldResult = { kind: 'applied' } | { kind: 'skipped'; reason: string } | { kind: 'refold' };

/**
 * Folds one position of the conversation's subject into `state`, in place.
 *
 * The version always moves to the position, readable or not: appends are
 * conditional on the subject's last sequence, so a skipped position still
 * has to be chained, or every append would fail as a lost race forever.
 *
 * An event that cannot be read, or that is not an event of this
 * conversation (a user event, another conversation's id), is skipped. It
 * cannot have come from the write side, which appends only events it
 * validated for this subject, so it carries no state the rules depend on;
 * folding it in would either fail (the conversation unwritable forever) or
 * let whoever could publish around the write side change members or
 * messages. Decodable-but-meaningless events (an edit of a message that does
 * not exist) fold in as no-ops, as evolve treats them.
 *
 * A `log.tombstoned` event names an earlier event of this subject that every
 * reader ignores. Positions named by a tombstone are skipped; when the named
 * event was already folded in, the result asks for a refold.
 */
export function foldEntry(state: ConversationState, stream: string, entry: FoldEntry): FoldResult {
  state.version = entry.seq;
  const event = entry.event;
  if (state.tombstoned.has(entry.seq)) {
    state.skipped.add(entry.seq);
    return { kind: 'skipped', reason: 'tombstoned' };
  }
  if (!event) {
    state.skipped.add(entry.seq);
    return { kind: 'skipped', reason: entry.reason ?? 'unreadable' };
  }
  if (event.type === 'log.tombstoned') {
    if (event.data.stream !== stream || event.data.seq >= entry.seq) return { kind: 'applied' };
    const target = event.data.seq;
    const alreadyIgnored = state.skipped.has(target) || state.tombstoned.has(target);
    state.tombstoned.add(target);
    return alreadyIgnored ? { kind: 'applied' } : { kind: 'refold' };
  }
  if (!CONVERSATION_TYPES.has(event.type) || (event as ConversationEvent).data.conversationId !== state.id) {
    state.skipped.add(entry.seq);
    return { kind: 'skipped', reason: `not an event of conversation ${state.id}: ${event.type}` };
  }
  evolve(state, event as ConversationEvent, entry.seq);
  return { kind: 'applied' };
}

/** A fresh state to fold the subject into again from its start, knowing the tombstones found so far. */
export function foldAgain(state: ConversationState): ConversationState {
  const fresh = emptyConversation(state.id);
  for (const seq of state.tombstoned) fresh.tombstoned.add(seq);
  return fresh;
}
