import { sql, type Transaction } from 'kysely';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseEntitySubject, type Subjects } from '../../../contracts/index.js';
import type { StoredEvent } from '../../event-log/event-store.js';
import type { Database } from '../../read-store/schema.js';

/** How long a batch waits at most for another shard's conversations to reach its markers. */
const WAIT_MS = 2000;
const MARKERS = new Set(['read.marked', 'delivered.marked']);

/**
 * A user's marker names a sequence of its conversation, which with several
 * shards may be on another shard than the user: nothing orders the two
 * streams, and a marker applied before the conversation's member row exists
 * (that shard's runner being behind) would be lost. So a batch first waits
 * until every such conversation's row has applied its marker's sequence
 * (`conversations.last_seq`). The wait is bounded: a conversation that
 * cannot get there (an event of it parked) must not hold the user's shard
 * back, so after WAIT_MS the markers are applied as they are. A rebuild
 * replays every conversation before any user (rebuild.ts): it never waits.
 */
export async function awaitMarkedConversations(trx: Transaction<Database>, subjects: Subjects, batch: readonly StoredEvent[]): Promise<void> {
  if (subjects.shards === 1) return;
  const needed = new Map<string, number>();
  for (const { subject, event } of batch) {
    if (!MARKERS.has(event.type) || parseEntitySubject(subject)?.kind !== 'user') continue;
    const { conversationId, seq } = event.data as { conversationId: string; seq: number };
    if (subjects.shardOf(conversationId) === subjects.shardOfSubject(subject)) continue;
    needed.set(conversationId, Math.max(needed.get(conversationId) ?? 0, seq));
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
