import { sql, type Transaction } from 'kysely';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseEntitySubject, type ParleyEvent, type Subjects } from '../../../contracts/index.js';
import type { StoredEvent } from '../../event-log/event-store.js';
import type { Database } from '../../read-store/schema.js';

/** How long a batch waits at most for another shard's conversations to reach its user events. */
const WAIT_MS = 2000;

/**
 * The sequence of its conversation a user's event was decided against, if it
 * names one: a marker's own sequence, a preference's `conversationSeq`
 * (absent in events written before it was recorded).
 */
export function conversationSeqOf(event: ParleyEvent): { conversationId: string; seq: number } | null {
  if (event.type === 'read.marked' || event.type === 'delivered.marked') return { conversationId: event.data.conversationId, seq: event.data.seq };
  if (event.type === 'preferences.set' && event.data.conversationSeq !== undefined)
    return { conversationId: event.data.conversationId, seq: event.data.conversationSeq };
  return null;
}

/**
 * A user's marker or preference changes the user's member row of its
 * conversation, which with several shards may be on another shard than the
 * user: nothing orders the two streams, and an event applied before the
 * member row exists (that shard's runner being behind) would be lost. So a
 * batch first waits until every such conversation's row has applied the
 * sequence the event names (`conversations.last_seq`): the member row the
 * write side checked is then there. The wait is bounded: a conversation that
 * cannot get there (an event of it parked) must not hold the user's shard
 * back, so after WAIT_MS the events are applied as they are. A rebuild
 * replays every conversation before any user (rebuild.ts): it never waits.
 */
export async function awaitNamedConversations(trx: Transaction<Database>, subjects: Subjects, batch: readonly StoredEvent[]): Promise<void> {
  if (subjects.shards === 1) return;
  const needed = new Map<string, number>();
  for (const { subject, event } of batch) {
    if (parseEntitySubject(subject)?.kind !== 'user') continue;
    const named = conversationSeqOf(event);
    if (!named || subjects.shardOf(named.conversationId) === subjects.shardOfSubject(subject)) continue;
    needed.set(named.conversationId, Math.max(needed.get(named.conversationId) ?? 0, named.seq));
  }
  if (needed.size === 0) return;
  const ids = [...needed.keys()];
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const rows = await sql<{ id: string; last_seq: string }>`select id, last_seq from conversations where id = any(${ids}::text[])`.execute(trx);
    const at = new Map(rows.rows.map((r) => [r.id, Number(r.last_seq)]));
    if (ids.every((id) => (at.get(id) ?? 0) >= needed.get(id)!) || Date.now() > deadline) return;
    await sleep(20);
  }
}
