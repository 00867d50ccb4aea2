import { sql, type Transaction } from 'kysely';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConversationKind } from '../../../contracts/index.js';
import type { Database } from '../../read-store/schema.js';
import type { Window } from '../domain/coalesce.js';
import type { MemberState } from '../domain/recipients.js';

type Trx = Transaction<Database>;

/** The notifier's SQL inside the checkpoint transaction: every statement handles a whole batch. */

/** Highest sequence ever evaluated for notifications (locked for the transaction). */
export async function readMark(trx: Trx, shard: number): Promise<number> {
  const lock = () => trx.selectFrom('notifier_marks').select('seq').where('shard', '=', shard).forUpdate();
  // One statement per batch once the row exists (from the first batch on); the insert only before that.
  const row = await lock().executeTakeFirst();
  if (row) return Number(row.seq);
  await trx
    .insertInto('notifier_marks')
    .values({ shard, seq: 0 })
    .onConflict((oc) => oc.column('shard').doNothing())
    .execute();
  return Number((await lock().executeTakeFirstOrThrow()).seq);
}

export async function advanceMark(trx: Trx, shard: number, seq: number): Promise<void> {
  await trx
    .updateTable('notifier_marks')
    .set({ seq: sql`greatest(seq, ${seq})` })
    .where('shard', '=', shard)
    .execute();
}

/**
 * Waits until the read model has applied `seq`: the notifier decides from its
 * members, markers and mutes, and would otherwise miss the members of a
 * conversation created a moment before its first message. The error says
 * "timeout" so the runner treats it as transient (retried, never parked).
 */
export async function waitForReadModel(trx: Trx, shard: number, seq: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const row = await trx.selectFrom('projector_checkpoints').select('seq').where('projector', '=', 'read-model').where('shard', '=', shard).executeTakeFirst();
    if (row && Number(row.seq) >= seq) return;
    if (Date.now() > deadline) throw new Error(`timeout: the read model has not reached seq ${seq} (at ${row?.seq ?? 'none'})`);
    await sleep(20);
  }
}

/**
 * Waits (at most `timeoutMs`) until each other shard's mark has reached the
 * sequence given for it: a user's clear of a conversation on that shard then
 * finds every window the messages it covers open. Bounded, as a shard held
 * back (a parked event) must not hold the user's shard: after the timeout the
 * clear goes ahead with the windows that exist.
 */
export async function awaitMarks(trx: Trx, needed: ReadonlyMap<number, number>, timeoutMs: number): Promise<void> {
  if (needed.size === 0) return;
  const shards = [...needed.keys()];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await trx.selectFrom('notifier_marks').select(['shard', 'seq']).where('shard', 'in', shards).execute();
    const at = new Map(rows.map((r) => [Number(r.shard), Number(r.seq)]));
    if (shards.every((k) => (at.get(k) ?? 0) >= needed.get(k)!) || Date.now() > deadline) return;
    await sleep(20);
  }
}

export interface ConversationInfo {
  kind: ConversationKind;
  title: string | null;
}

export async function conversationsOf(trx: Trx, ids: string[]): Promise<Map<string, ConversationInfo>> {
  if (ids.length === 0) return new Map();
  const rows = await trx.selectFrom('conversations').select(['id', 'kind', 'title']).where('id', 'in', ids).execute();
  return new Map(rows.map((r) => [r.id, { kind: r.kind, title: r.title }]));
}

/**
 * Members who could be notified: those with at least one registered channel
 * (everyone else has nowhere to be reached), of whole conversations, or only
 * of the given (conversation, user) pairs (channels, where only the
 * mentioned are candidates).
 */
export async function candidateMembers(
  trx: Trx,
  wholeConversations: string[],
  pairs: { conversationId: string; userId: string }[],
): Promise<Map<string, MemberState[]>> {
  const out = new Map<string, MemberState[]>();
  const add = (rows: { conversation_id: string; user_id: string; read_seq: string; muted_until: Date | null }[]) => {
    for (const r of rows) {
      const list = out.get(r.conversation_id) ?? [];
      list.push({ userId: r.user_id, readSeq: Number(r.read_seq), mutedUntil: r.muted_until ? r.muted_until.getTime() : null });
      out.set(r.conversation_id, list);
    }
  };
  if (wholeConversations.length > 0) {
    const r = await sql<{ conversation_id: string; user_id: string; read_seq: string; muted_until: Date | null }>`
      select m.conversation_id, m.user_id, m.read_seq, m.muted_until from conversation_members m
      where m.conversation_id = any(${wholeConversations}::text[])
        and exists (select 1 from notification_channels ch where ch.user_id = m.user_id)`.execute(trx);
    add(r.rows);
  }
  if (pairs.length > 0) {
    const r = await sql<{ conversation_id: string; user_id: string; read_seq: string; muted_until: Date | null }>`
      select m.conversation_id, m.user_id, m.read_seq, m.muted_until from conversation_members m
      join unnest(${pairs.map((p) => p.conversationId)}::text[], ${pairs.map((p) => p.userId)}::text[]) as v(c, u) on m.conversation_id = v.c and m.user_id = v.u
      where exists (select 1 from notification_channels ch where ch.user_id = m.user_id)`.execute(trx);
    add(r.rows);
  }
  return out;
}

/**
 * Open (pending, not yet dispatched) windows of these members, locked: the
 * delivery loop skips locked rows, so a window cannot be dispatched while
 * this transaction extends it.
 */
export async function openWindows(trx: Trx, pairs: { conversationId: string; userId: string }[]): Promise<Window[]> {
  if (pairs.length === 0) return [];
  const r = await sql<{
    id: string;
    user_id: string;
    conversation_id: string;
    first_seq: string;
    last_seq: string;
    message_count: number;
    mentioned: boolean;
    sender_id: string;
    preview: string | null;
    first_at: Date;
    last_at: Date;
    due_at: Date;
  }>`
    select n.id, n.user_id, n.conversation_id, n.first_seq, n.last_seq, n.message_count, n.mentioned, n.sender_id, n.preview, n.first_at, n.last_at, n.due_at
    from notifications n
    join unnest(${pairs.map((p) => p.conversationId)}::text[], ${pairs.map((p) => p.userId)}::text[]) as v(c, u) on n.conversation_id = v.c and n.user_id = v.u
    where n.status = 'pending' and not n.dispatched
    for update of n`.execute(trx);
  return r.rows.map((w) => ({
    id: w.id,
    userId: w.user_id,
    conversationId: w.conversation_id,
    firstSeq: Number(w.first_seq),
    lastSeq: Number(w.last_seq),
    count: w.message_count,
    mentioned: w.mentioned,
    senderId: w.sender_id,
    preview: w.preview,
    firstAt: w.first_at.getTime(),
    lastAt: w.last_at.getTime(),
    dueAt: w.due_at.getTime(),
  }));
}

export async function writeWindows(trx: Trx, updated: Window[], created: Window[], conversations: Map<string, ConversationInfo>): Promise<void> {
  if (updated.length > 0) {
    await sql`update notifications n set last_seq = v.last_seq, message_count = v.count, mentioned = v.mentioned, sender_id = v.sender_id,
        preview = v.preview, last_at = to_timestamp(v.last_at / 1000.0), updated_at = now()
      from unnest(${updated.map((w) => w.id)}::bigint[], ${updated.map((w) => w.lastSeq)}::bigint[], ${updated.map((w) => w.count)}::int[],
        ${updated.map((w) => w.mentioned)}::boolean[], ${updated.map((w) => w.senderId)}::text[], ${updated.map((w) => w.preview)}::text[],
        ${updated.map((w) => w.lastAt)}::float8[]) as v(id, last_seq, count, mentioned, sender_id, preview, last_at)
      where n.id = v.id and n.status = 'pending' and not n.dispatched`.execute(trx);
  }
  // Chunks keep a large fan-out under Postgres' bind-parameter limit.
  for (let i = 0; i < created.length; i += 1000) {
    const rows = created.slice(i, i + 1000).map((w) => {
      const c = conversations.get(w.conversationId);
      return {
        user_id: w.userId,
        conversation_id: w.conversationId,
        conversation_kind: c?.kind ?? 'group',
        title: c?.title ?? null,
        first_seq: w.firstSeq,
        last_seq: w.lastSeq,
        message_count: w.count,
        mentioned: w.mentioned,
        sender_id: w.senderId,
        preview: w.preview,
        first_at: new Date(w.firstAt),
        last_at: new Date(w.lastAt),
        due_at: new Date(w.dueAt),
        status: 'pending' as const,
      };
    });
    await trx
      .insertInto('notifications')
      .values(rows)
      .onConflict((oc) => oc.columns(['user_id', 'conversation_id', 'first_seq']).doNothing())
      .execute();
  }
}

export interface Clear {
  userId: string;
  conversationId: string;
  /** Clears pending notifications whose last message is at or before this sequence. */
  uptoSeq: number;
  /**
   * And (when set) whose last message was sent at or before this time (ms): a user's clear of a conversation on
   * another shard, whose sequences the user's event cannot be compared with.
   */
  uptoAt?: number;
  reason: string;
}

/** Pending notifications become `cleared` (with their pending deliveries); sent ones stay as they are. */
export async function clearPending(trx: Trx, clears: Clear[]): Promise<void> {
  if (clears.length === 0) return;
  await sql`with v as (select * from unnest(${clears.map((c) => c.userId)}::text[], ${clears.map((c) => c.conversationId)}::text[],
        ${clears.map((c) => c.uptoSeq)}::bigint[], ${clears.map((c) => c.reason)}::text[], ${clears.map((c) => c.uptoAt ?? null)}::float8[])
        as v(user_id, conversation_id, upto, reason, upto_at)),
      cleared as (update notifications n set status = 'cleared', reason = v.reason, cleared_at = now(), updated_at = now()
        from v where n.user_id = v.user_id and n.conversation_id = v.conversation_id and n.status = 'pending' and n.last_seq <= v.upto
          and (v.upto_at is null or n.last_at <= to_timestamp(v.upto_at / 1000.0))
        returning n.id)
    update notification_deliveries d set status = 'cleared', updated_at = now()
    from cleared where d.notification_id = cleared.id and d.status = 'pending'`.execute(trx);
}

/** A recalled or deleted message must not be shown in a notification that has not gone out yet. */
export async function dropPreviews(trx: Trx, targets: { conversationId: string; seq: number }[]): Promise<void> {
  if (targets.length === 0) return;
  await sql`update notifications n set preview = null, updated_at = now()
    from unnest(${targets.map((t) => t.conversationId)}::text[], ${targets.map((t) => t.seq)}::bigint[]) as v(c, seq)
    where n.conversation_id = v.c and n.status = 'pending' and n.last_seq = v.seq`.execute(trx);
}
