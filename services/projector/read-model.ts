import { sql } from 'kysely';
import { parseEntitySubject, type ConversationEvent, type Subjects, type UserEvent } from '../../contracts/index.js';
import type { StoredEvent } from '../event-log/event-store.js';
import { recordUsers, unapplied } from './read-model/applied.js';
import { applyConversationEvent } from './read-model/conversations.js';
import { insertConversations, type PendingCreation } from './read-model/conversations-created.js';
import { applyMessageChange } from './read-model/messages-changed.js';
import { insertMessages, noteCreated, searchTokens, type PendingMessage } from './read-model/messages-sent.js';
import { applyUserEvent } from './read-model/users.js';
import { awaitNamedConversations } from './read-model/cross-shard.js';
import type { Projection } from '../projection/projection.js';
import { PREPARED } from '../read-store/prepared.js';

const MESSAGE_CHANGES = new Set(['message.edited', 'message.recalled', 'message.deleted', 'reaction.added', 'reaction.removed']);

/**
 * Conversations, members, history, reactions, markers, preferences, blocks
 * and search. Runs of consecutive creations and messages are inserted
 * together (a fixed number of statements per run, creations first: one for
 * a run of messages, after the batch's one lookup); every
 * other event is applied in log order in between, so an edit always finds
 * the message it edits. Only a conversation's own events depend on each
 * other, so a run is cut short when it would otherwise put a creation
 * after a message of the same conversation, or two creations of one.
 *
 * Idempotent per event: events their entity has already applied are dropped
 * first (read-model/applied.ts), so applying any event again, in any batch,
 * changes nothing.
 */
export function readModelProjection(subjects: Subjects): Projection {
  return {
    name: 'read-model',
    filterSubjects: [`${subjects.namespace}.ev.>`],
    prepare(batch) {
      for (const { event } of batch) if (event.type === 'message.sent') searchTokens(event);
    },
    async apply(trx, all: StoredEvent[]) {
      const { fresh: batch, users, sent } = await unapplied(trx, subjects.namespace, all);
      await awaitNamedConversations(trx, subjects, batch);
      const run = new Run();
      const flush = async () => {
        if (run.creations.length) {
          await insertConversations(trx, run.creations);
          noteCreated(
            sent,
            run.creations.map((c) => c.event.data.conversationId),
          );
        }
        if (run.messages.length) await insertMessages(trx, run.messages, sent);
        run.clear();
      };
      const touched = new Map<string, number>();
      for (const { seq, subject, event } of batch) {
        if (event.type === 'message.sent') {
          run.messages.push({ seq, event });
          run.conversations.add(event.data.conversationId);
          continue;
        }
        if (event.type === 'conversation.created') {
          if (run.conversations.has(event.data.conversationId)) await flush();
          run.creations.push({ seq, event });
          run.conversations.add(event.data.conversationId);
          touched.set(event.data.conversationId, seq);
          continue;
        }
        // About the log, not the entity (the runner skips what it names): no row changes, nothing to flush for.
        if (event.type === 'log.tombstoned') continue;
        await flush();
        // A user's subject on any shard (`<ns>.ev.user.<id>`, `<ns>.ev.<k>.user.<id>`).
        if (parseEntitySubject(subject)?.kind === 'user') {
          await applyUserEvent(trx, event as UserEvent, subjects.shards > 1);
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
        await sql`${PREPARED}update conversations c set last_seq = greatest(c.last_seq, v.seq)
          from unnest(${ids}::text[], ${ids.map((id) => touched.get(id)!)}::bigint[]) as v(id, seq) where c.id = v.id`.execute(trx);
      }
      await recordUsers(trx, users);
    },
  };
}

/** Creations and messages waiting to be inserted together, and the conversations they belong to. */
class Run {
  creations: PendingCreation[] = [];
  messages: PendingMessage[] = [];
  readonly conversations = new Set<string>();

  clear(): void {
    this.creations = [];
    this.messages = [];
    this.conversations.clear();
  }
}
