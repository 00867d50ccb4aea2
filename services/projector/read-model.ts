import { sql } from 'kysely';
import type { ConversationEvent, Subjects, UserEvent } from '../../contracts/index.js';
import type { StoredEvent } from '../shared/nats/event-store.js';
import { applyConversationEvent } from './read-model/conversations.js';
import { applyMessageChange } from './read-model/messages-changed.js';
import { insertMessages, searchTokens, type PendingMessage } from './read-model/messages-sent.js';
import { applyUserEvent } from './read-model/users.js';
import type { Projection } from './runner.js';

const MESSAGE_CHANGES = new Set(['message.edited', 'message.recalled', 'message.deleted', 'reaction.added', 'reaction.removed']);

/**
 * Conversations, members, history, reactions, markers, preferences, blocks
 * and search. Runs of consecutive message.sent events are inserted together
 * (a fixed number of statements per run); other events are applied in log
 * order in between, so an edit always finds the message it edits.
 */
export function readModelProjection(subjects: Subjects): Projection {
  return {
    name: 'read-model',
    filterSubjects: [`${subjects.namespace}.ev.>`],
    prepare(batch) {
      for (const { event } of batch) if (event.type === 'message.sent') searchTokens(event);
    },
    async apply(trx, batch: StoredEvent[]) {
      let run: PendingMessage[] = [];
      const flush = async () => {
        if (run.length) await insertMessages(trx, run);
        run = [];
      };
      const touched = new Map<string, number>();
      for (const { seq, subject, event } of batch) {
        if (event.type === 'message.sent') {
          run.push({ seq, event });
          continue;
        }
        await flush();
        if (subject.startsWith(`${subjects.namespace}.ev.user.`)) {
          await applyUserEvent(trx, event as UserEvent);
          continue;
        }
        const convEvent = event as ConversationEvent;
        if (MESSAGE_CHANGES.has(event.type)) await applyMessageChange(trx, seq, convEvent);
        else await applyConversationEvent(trx, seq, convEvent);
        touched.set(convEvent.data.conversationId, seq);
      }
      await flush();
      if (touched.size) {
        const ids = [...touched.keys()];
        await sql`update conversations c set last_seq = greatest(c.last_seq, v.seq)
          from unnest(${ids}::text[], ${ids.map((id) => touched.get(id)!)}::bigint[]) as v(id, seq) where c.id = v.id`.execute(trx);
      }
    },
  };
}
