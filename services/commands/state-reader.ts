import type { Subjects } from '../../contracts/index.js';
import { foldAgain, foldEntry } from '../domain/conversation/fold.js';
import type { ConversationState } from '../domain/conversation/state.js';
import type { LogEntry } from '../event-log/event-store.js';
import type { EventLog } from '../event-log/event-log.js';
import type { LruMap } from '../limits/lru.js';
import type { Logger } from '../observability/logger.js';

/** Events a catch-up after a lost race reads by direct gets before it reads the rest with a consumer. */
const CATCH_UP_DIRECT_GETS = 16;

export interface ConversationStateReaderDeps {
  store: EventLog;
  subjects: Subjects;
  log: Logger;
  /** The write side's cache of folded states: a state brought up to date is stored back. */
  cache: LruMap<string, ConversationState>;
}

/**
 * Brings the write side's folded state of a conversation up to date with the
 * log: a full read of the subject after the state's version, or, after a lost
 * race, a cheap catch-up by direct gets (services/commands/conversation-commands.ts
 * decides when).
 */
export class ConversationStateReader {
  constructor(private readonly deps: ConversationStateReaderDeps) {}

  /**
   * Folds the positions stored after `state.version` into it, skipping what
   * cannot be read or was tombstoned (fold.ts says why that is safe), and
   * folds again from the start when a tombstone names an event already in.
   */
  async refresh(state: ConversationState): Promise<ConversationState> {
    const subject = this.deps.subjects.conv(state.id);
    for (let refold = true; refold; ) {
      refold = false;
      for await (const entry of this.deps.store.readSubjectEntries(subject, state.version)) {
        const result = foldEntry(state, this.streamOf(state.id), entry);
        if (result.kind === 'skipped') this.skipped(entry, result.reason);
        if (result.kind === 'refold') {
          refold = true;
          break;
        }
      }
      if (refold) {
        this.deps.log.info('a tombstone names an event already folded in: folding the conversation again without it', { conversationId: state.id });
        state = foldAgain(state);
      }
    }
    this.deps.cache.set(state.id, state);
    return state;
  }

  /** The stream of the conversation's shard: the one its tombstones name. */
  private streamOf(conversationId: string): string {
    return this.deps.store.infoFor(this.deps.subjects.conv(conversationId)).stream;
  }

  /** Counted and logged (once per event and process) by the store's unreadable-events observer. */
  private skipped(entry: LogEntry, reason: string): void {
    if (reason !== 'tombstoned') this.deps.store.reportUnreadable('write', { seq: entry.seq, subject: entry.subject, reason });
  }

  /**
   * After a lost race: folds in what the winners appended since `state.version`, up to `lastSeq` (the
   * subject's last sequence the refusal named), by direct gets, one request per event and no consumer.
   * A full refresh creates a consumer on the server, pulls and deletes it (about 2 ms, 10 ms at p99 on
   * a quiet single server; more on a replicated stream), long enough for the winner to append again.
   * Falls back to refresh when the gap is long, the hint is missing or the direct reads fall short.
   */
  async catchUp(state: ConversationState, lastSeq: number | null, ahead: LogEntry | null): Promise<ConversationState> {
    if (lastSeq === null) return this.refresh(state);
    const fold = (entry: LogEntry): boolean => {
      const result = foldEntry(state, this.streamOf(state.id), entry);
      if (result.kind === 'skipped') this.skipped(entry, result.reason);
      return result.kind !== 'refold';
    };
    const refold = () => {
      this.deps.log.info('a tombstone names an event already folded in: folding the conversation again without it', { conversationId: state.id });
      return this.refresh(foldAgain(state));
    };
    // Read along with the refused append: the next event after the state the append was decided on.
    if (ahead && ahead.seq > state.version && !fold(ahead)) return refold();
    let read = 0;
    try {
      if (state.version < lastSeq)
        for await (const entry of this.deps.store.readSubjectEntriesDirect(this.deps.subjects.conv(state.id), state.version)) {
          if (!fold(entry)) return refold();
          if (state.version >= lastSeq || ++read >= CATCH_UP_DIRECT_GETS) break;
        }
    } catch (err) {
      // A direct get refused between leaders: the subject read retries those itself.
      this.deps.log.debug('catching up by direct gets failed, reading the subject', { conversationId: state.id, err });
    }
    if (state.version >= lastSeq) {
      this.deps.cache.set(state.id, state);
      return state;
    }
    return this.refresh(state);
  }

  /**
   * The first position on `subject` after `afterSeq` (a direct get), or null: none, or the read failed.
   * Asked one event-loop turn later, after the append of this turn went out (the store publishes a
   * turn's appends together), so that it reaches the server behind the append it accompanies.
   */
  async nextEntry(subject: string, afterSeq: number): Promise<LogEntry | null> {
    await new Promise((resolve) => setImmediate(resolve));
    const reader = this.deps.store.readSubjectEntriesDirect(subject, afterSeq);
    try {
      const first = await reader.next();
      return first.done ? null : first.value;
    } catch {
      // Only a shortcut: the catch-up reads what it needs itself.
      return null;
    } finally {
      await reader.return(undefined).catch(() => undefined);
    }
  }
}
