import type { Transaction } from 'kysely';
import { parseEntitySubject, type ConversationEventOf, type Subjects } from '../../contracts/index.js';
import type { Database } from '../read-store/schema.js';
import type { Projection } from '../projection/projection.js';
import { coalesce, type ClearPoint, type Hit } from './domain/coalesce.js';
import { previewOf, wantsNotification, type ChannelMessages } from './domain/recipients.js';
import type { PresenceReader } from './infra/presence-reader.js';
import * as store from './infra/window-store.js';

export interface NotifierProjectionOptions {
  subjects: Subjects;
  presence: Pick<PresenceReader, 'onlineAmong'>;
  coalesceMs: number;
  channelMessages: ChannelMessages;
  /** Messages older than this when processed are not notified. */
  maxEventAgeMs: number;
  /** How long to wait for the read model to catch up before the batch is retried. */
  readModelWaitMs?: number;
  /** How long a user's clear of another shard's conversation waits at most for that shard's windows (below). */
  crossShardWaitMs?: number;
  now?: () => number;
}

/** The notifier's projector name and checkpoint key (its durable consumers are `<namespace>-notifier`, `..._s<k>` on shard k > 0). */
export const NOTIFIER = 'notifier';

type Sent = { seq: number; event: ConversationEventOf<'message.sent'> };
/** A clear and the sequence of the event that clears. */
type Clear = store.Clear & ClearPoint;

/**
 * Turns the log into notification rows inside the runner's checkpoint
 * transaction, so each row is created exactly once. Only messages above the
 * high-water mark (`notifier_marks`) are evaluated: resetting the checkpoint
 * and replaying the log creates nothing, and nothing is sent again. A clear
 * (read, muted, left) reaches only notifications whose last message is older
 * than the event that clears: that is all it could reach when first applied
 * (windows only grow, in log order), so applying it again, after newer
 * messages opened new windows, clears exactly what it cleared the first time.
 * Delivery happens elsewhere (delivery-loop.ts), after commit.
 *
 * Every batch is of one shard (each shard has its own runner, replay and
 * parked rows): the mark and the read model's checkpoint it waits for are
 * that shard's. A user's clear (read, muted) may name a conversation of
 * another shard, whose sequences are not comparable with the user's own: it
 * then reaches up to the marker's sequence (read), or the notifications whose
 * last message was sent before the event (muted). Nothing orders two shards'
 * streams, so such a clear can also come before the window it would clear
 * exists: the clear first waits (bounded) until that shard's mark has reached
 * the conversation's sequence the event names (the marker's, the mute's
 * `conversationSeq`), so the windows of every message it covers are open.
 * Messages the other shard evaluates later read the member's read marker and
 * mute in the read model, which the decision to notify reads.
 */
export function notifierProjection(options: NotifierProjectionOptions): Projection {
  const now = options.now ?? Date.now;
  const subjects = options.subjects;
  return {
    name: NOTIFIER,
    filterSubjects: [`${options.subjects.namespace}.ev.>`],
    async apply(trx, batch) {
      const shard = shardOfBatch(subjects, batch);
      const mark = await store.readMark(trx, shard);
      const sent: Sent[] = [];
      const clears: Clear[] = [];
      const recalled: { conversationId: string; seq: number }[] = [];
      /** Per other shard, the sequence its conversations must have been notified up to before this batch's clears. */
      const awaited = new Map<number, number>();
      for (const { seq, subject, event } of batch) {
        if (parseEntitySubject(subject)?.kind === 'user') {
          const convShard = subjects.shardOf(('conversationId' in event.data && event.data.conversationId) || '');
          const sameShard = convShard === shard;
          if (!sameShard && (event.type === 'read.marked' || (event.type === 'preferences.set' && event.data.mutedUntil))) {
            const upto = event.type === 'read.marked' ? event.data.seq : event.data.conversationSeq;
            if (upto !== undefined) awaited.set(convShard, Math.max(awaited.get(convShard) ?? 0, upto));
          }
          if (event.type === 'read.marked')
            clears.push({
              userId: event.actor,
              conversationId: event.data.conversationId,
              atSeq: seq,
              // The marker's sequence is its conversation's; clamped by the event's own only where both are one stream's.
              uptoSeq: sameShard ? Math.min(event.data.seq, seq) : event.data.seq,
              reason: 'read',
            });
          if (event.type === 'preferences.set' && event.data.mutedUntil && event.data.mutedUntil > event.at) {
            const c = { userId: event.actor, conversationId: event.data.conversationId, atSeq: seq, reason: 'muted' };
            // Another shard's conversation: no sequence of its own to compare with, so the mute's time decides.
            clears.push(sameShard ? { ...c, uptoSeq: seq } : { ...c, uptoSeq: Number.MAX_SAFE_INTEGER, uptoAt: event.at });
          }
          continue;
        }
        if (event.type === 'message.sent' && seq > mark && now() - event.at <= options.maxEventAgeMs) sent.push({ seq, event });
        if (event.type === 'message.recalled' || event.type === 'message.deleted')
          recalled.push({ conversationId: event.data.conversationId, seq: event.data.target.seq });
        if (event.type === 'member.removed')
          clears.push({ userId: event.data.userId, conversationId: event.data.conversationId, atSeq: seq, uptoSeq: seq, reason: 'left' });
      }
      // Messages first, clears after: coalescing already keeps a window a clear of this batch closes from taking later messages.
      if (sent.length > 0) await notify(trx, shard, sent, clears, options);
      await store.dropPreviews(trx, recalled);
      await store.awaitMarks(trx, awaited, options.crossShardWaitMs ?? 2000);
      await store.clearPending(trx, clears);
      const last = batch[batch.length - 1];
      if (last) await store.advanceMark(trx, shard, last.seq);
    },
  };
}

/** The shard of a batch's events (all of one shard: each shard is run, replayed and re-driven on its own). */
function shardOfBatch(subjects: Subjects, batch: readonly { subject: string }[]): number {
  const shard = batch.length > 0 ? (subjects.shardOfSubject(batch[0]!.subject) ?? 0) : 0;
  for (const { subject } of batch)
    if ((subjects.shardOfSubject(subject) ?? 0) !== shard) throw new Error(`a notifier batch spans shards ${shard} and ${subject}`);
  return shard;
}

async function notify(
  trx: Transaction<Database>,
  shard: number,
  sent: Sent[],
  clears: readonly ClearPoint[],
  options: NotifierProjectionOptions,
): Promise<void> {
  await store.waitForReadModel(trx, shard, sent[sent.length - 1]!.seq, options.readModelWaitMs ?? 10_000);
  const conversations = await store.conversationsOf(trx, [...new Set(sent.map((s) => s.event.data.conversationId))]);
  const whole: string[] = [];
  const pairs: { conversationId: string; userId: string }[] = [];
  for (const [id, info] of conversations) {
    if (info.kind !== 'channel' || options.channelMessages === 'all') whole.push(id);
  }
  for (const s of sent) {
    const id = s.event.data.conversationId;
    if (conversations.get(id)?.kind === 'channel' && options.channelMessages === 'mentions') {
      for (const userId of s.event.data.mentions ?? []) pairs.push({ conversationId: id, userId });
    }
  }
  const members = await store.candidateMembers(trx, whole, pairs);
  const hits: Hit[] = [];
  for (const { seq, event } of sent) {
    const d = event.data;
    const kind = conversations.get(d.conversationId)?.kind;
    if (!kind) continue;
    const facts = { seq, at: event.at, senderId: event.actor, mentions: d.mentions ?? [], kind };
    for (const m of members.get(d.conversationId) ?? []) {
      const decision = wantsNotification(m, facts, options.channelMessages);
      if (decision.notify)
        hits.push({
          userId: m.userId,
          conversationId: d.conversationId,
          seq,
          at: event.at,
          senderId: event.actor,
          preview: previewOf(d.text),
          mentioned: decision.mentioned,
        });
    }
  }
  if (hits.length === 0) return;
  const online = await options.presence.onlineAmong(hits.map((h) => h.userId));
  const offline = hits.filter((h) => !online.has(h.userId));
  const pairKeys = new Map(offline.map((h) => [`${h.userId}\u0000${h.conversationId}`, { conversationId: h.conversationId, userId: h.userId }]));
  const open = await store.openWindows(trx, [...pairKeys.values()]);
  const { updated, created } = coalesce(open, offline, options.coalesceMs, clears);
  await store.writeWindows(trx, updated, created, conversations);
}
