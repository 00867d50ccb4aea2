import type { Subjects } from '../../contracts/index.js';
import { foldAgain, foldEntry } from '../domain/conversation/fold.js';
import { emptyConversation, type ConversationState } from '../domain/conversation/state.js';
import type { EventLog } from '../event-log/event-log.js';

/**
 * A conversation's write-side state folded from its whole subject, as the
 * write side folds it (unreadable and tombstoned events left out), for
 * readers outside the write side that must agree with it (the membership
 * reactor after a tombstone). Reads the whole subject: for rare use.
 */
export async function foldConversation(store: EventLog, subjects: Subjects, conversationId: string): Promise<ConversationState> {
  let state = emptyConversation(conversationId);
  for (let refold = true; refold; ) {
    refold = false;
    for await (const entry of store.readSubjectEntries(subjects.conv(conversationId), state.version)) {
      if (foldEntry(state, store.infoFor(subjects.conv(conversationId)).stream, entry).kind === 'refold') {
        refold = true;
        break;
      }
    }
    if (refold) state = foldAgain(state);
  }
  return state;
}
