import { z } from 'zod';
import { ConversationId } from '../ids.js';
import { envelope } from './common.js';

/**
 * Events about the log itself, written by operators (never by clients).
 * Stored on the subject of the event they are about, so an entity's readers
 * (the write side's fold, projections, devices) meet it in that entity's
 * order.
 */

/**
 * The event at `seq` of `stream` is to be ignored by every reader: the write
 * side's fold, every projection (also when replaying the log from its start,
 * where the event comes before this tombstone) and resumes. Appended by
 * `parley log tombstone` to the same subject as the event it names, after
 * it. `actor` and `by` name the operator.
 */
export const LogTombstoned = z.strictObject({
  type: z.literal('log.tombstoned'),
  v: z.literal(1),
  ...envelope,
  data: z.strictObject({
    stream: z.string().min(1).max(128),
    seq: z.number().int().positive(),
    reason: z.string().min(1).max(500),
    by: z.string().min(1).max(64),
    /**
     * On a conversation's subject: its id, as in every conversation event, so
     * readers that index conversations by their events (the read model's
     * last sequence, resumes) count the tombstone as the conversation's.
     */
    conversationId: ConversationId.optional(),
  }),
});
export type LogTombstoned = z.infer<typeof LogTombstoned>;

export const LogEvent = z.discriminatedUnion('type', [LogTombstoned]);
export type LogEvent = z.infer<typeof LogEvent>;
