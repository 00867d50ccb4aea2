import type { Consumer, JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { ParleyEvent, parseStoredEvent, upcastStoredEvent, type EventType } from '../../contracts/index.js';
import { AppError } from '../runtime/errors.js';
import { KeyedQueue } from '../concurrency/keyed-queue.js';
import { LruMap } from '../limits/lru.js';
import { StreamPublisher } from './stream-publisher.js';

/** How long an append waits for the stream's acknowledgement before it fails as `unavailable`. */
const APPEND_TIMEOUT_MS = 5000;

/**
 * Stored with every event: the sequence of the previous event on the same
 * subject (0: none), the `prevSeq` of its event frame. Every append is
 * conditional on exactly that value, so the header always equals what the
 * server reports as `Nats-Last-Sequence` when it republishes the event live,
 * and a replay from the log shows the same `prevSeq` as live delivery did.
 */
export const PREV_SEQ_HEADER = 'Parley-Prev-Seq';

/** A pull reading a subject ends after this long without messages (then a new consumer is tried). */
const SUBJECT_PULL_EXPIRES_MS = 2000;
/** Failed pulls in a row (empty, or no responders) before a subject read fails as `unavailable`. */
const SUBJECT_PULL_ATTEMPTS = 5;

/** Conflicts an unconditional append retries before giving up (another writer kept winning). */
const AUTO_APPEND_ATTEMPTS = 12;

export interface AppendOptions {
  /** Deduplication key (Nats-Msg-Id): a retry with the same key returns the original sequence. */
  msgId?: string;
  /** Optimistic concurrency: the append fails with `WrongLastSequence` unless this is the subject's last sequence (0 = no event yet). */
  expectedLastSubjectSeq?: number;
}

export interface AppendResult {
  seq: number;
  duplicate: boolean;
}

export interface StoredEvent {
  seq: number;
  subject: string;
  event: ParleyEvent;
  /**
   * Sequence of the previous event on the same subject (0: none), from
   * PREV_SEQ_HEADER; null or absent for an event stored without it (by a
   * version before the header existed): readers resolve those with
   * `previousOnSubject`.
   */
  prevSeq?: number | null;
}

/** The PREV_SEQ_HEADER of a stored message, or null when absent. */
export function prevSeqOf(headers: { get(key: string): string } | undefined): number | null {
  const raw = headers?.get(PREV_SEQ_HEADER);
  if (!raw) return null;
  const n = Number(raw);
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

/**
 * One position of the log as stored: its event, or null with the reason when
 * no schema version can read it (garbage or a schema-failing event published
 * around the write side, e.g. by a raw `nats pub`). Readers that chain on
 * sequences (the write side's fold) need to see those positions too.
 */
export type LogEntry = StoredEvent | { seq: number; subject: string; event: null; reason: string };

/** Told about every stored event a reader skipped because it cannot be read (the unreadable-events metric and a warning). */
export type UnreadableObserver = (reader: string, entry: { seq: number; subject: string; reason: string }) => void;

/** Decodes one stored event, or says why it cannot be read (never throws). */
export function decodeEntry(seq: number, subject: string, data: Uint8Array, prevSeq: number | null = null): LogEntry {
  try {
    return { seq, subject, event: decodeEvent(data), prevSeq };
  } catch (err) {
    return { seq, subject, event: null, reason: unreadableReason(err) };
  }
}

function unreadableReason(err: unknown): string {
  if (err instanceof SyntaxError) return `not JSON: ${err.message}`.slice(0, 300);
  const issues = (err as { issues?: { path: unknown[]; message: string }[] })?.issues;
  if (Array.isArray(issues))
    return `fails the event schema: ${issues
      .slice(0, 3)
      .map((i) => `${i.path.join('.') || '(event)'}: ${i.message}`)
      .join('; ')}`.slice(0, 300);
  return String((err as Error)?.message ?? err).slice(0, 300);
}

/**
 * Drops the events a `log.tombstoned` in the same read names (the tombstone
 * itself stays: it keeps each entity's sequence chain intact for clients).
 * A tombstone later than the read cannot be known here; devices then get the
 * tombstone after the event and drop it themselves (docs/operations.md).
 */
function withoutTombstoned(events: StoredEvent[], stream: string): StoredEvent[] {
  let dead: Set<number> | null = null;
  for (const e of events) if (e.event.type === 'log.tombstoned' && e.event.data.stream === stream) (dead ??= new Set()).add(e.event.data.seq);
  return dead ? events.filter((e) => !dead.has(e.seq)) : events;
}

/**
 * A whole-stream read that the answering server ended (nothing pending) before the range's end, though every
 * sequence up to it was assigned: a server whose copy of the stream is behind (a former leader cut off by a
 * partition, answering until it steps down). Treated like a refused read: another consumer is tried, and the
 * read fails as `unavailable` rather than return (or let a cache keep) a range with a hole in it.
 */
class ShortAnswer extends Error {
  constructor(reached: number, until: number) {
    super(`the event log answered a read up to sequence ${reached}, not ${until}`);
  }
}

/** A range read: its events, whether `limit` cut it short, and how far the answering server's copy reached. */
export interface RangeRead {
  events: StoredEvent[];
  truncated: boolean;
  /**
   * The last sequence of the range the server vouched for: the range's end when it delivered up to it (or
   * beyond), otherwise the last position it delivered before saying nothing more was pending. A filtered read
   * reaching less than the end is normal (no more events on those subjects), unless the caller knows an
   * event at the end exists: then the answering server's copy of the stream is behind.
   */
  reached: number;
}

/** The subject moved on since the state the caller decided from. Reload and decide again. */
export class WrongLastSequence extends Error {
  /**
   * The subject's last sequence when the append was refused, from the server's "wrong last sequence: N"
   * (null when absent): how far a catch-up has to read. A hint only; the next conditional append checks it.
   */
  readonly lastSeq: number | null;

  constructor(subject: string, cause: unknown) {
    super(`${subject} changed concurrently`, { cause });
    this.name = 'WrongLastSequence';
    const digits = /wrong last sequence: (\d+)/i.exec(String((cause as Error | undefined)?.message))?.[1];
    const n = digits === undefined ? Number.NaN : Number(digits);
    // 0 is an answer too: the subject has no event left in the stream (retention or a purge removed them).
    this.lastSeq = Number.isSafeInteger(n) && n >= 0 ? n : null;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeEvent(event: ParleyEvent): Uint8Array {
  return encoder.encode(JSON.stringify(event));
}

export function decodeEvent(data: Uint8Array): ParleyEvent {
  return parseStoredEvent(JSON.parse(decoder.decode(data)));
}

/**
 * The event when its type is one of `types`, null for any other type. Only
 * those are validated: a reader that reacts to a few types (membership
 * changes among every message) skips the schema check on the rest.
 */
export function decodeEventOfTypes<T extends EventType>(data: Uint8Array, types: ReadonlySet<T>): Extract<ParleyEvent, { type: T }> | null {
  const raw = upcastStoredEvent(JSON.parse(decoder.decode(data)));
  if (!types.has(raw.type as T)) return null;
  return ParleyEvent.parse(raw) as Extract<ParleyEvent, { type: T }>;
}

/** How an append ended, for latency metrics. */
export type AppendOutcome = 'ok' | 'duplicate' | 'conflict' | 'error';
export type AppendObserver = (seconds: number, outcome: AppendOutcome) => void;

/** Append and read access to one shard's event stream. */
export class EventStore {
  private readonly publisher: StreamPublisher;
  /** Appends without a caller-given expectation run one at a time per subject (each expects the previous one's sequence). */
  private readonly serial = new KeyedQueue();
  /** Last sequence this process stored per subject, for appends without a caller-given expectation. */
  private readonly lastKnown = new LruMap<string, number>(50_000);
  /** Lost races of appends without a caller-given expectation (for tests and diagnostics). */
  autoAppendConflicts = 0;

  constructor(
    nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    readonly stream: string,
    /** Told the duration and outcome of every append (the publish-latency metric). */
    private readonly observe: AppendObserver = () => undefined,
    /** Told about every unreadable event a read skipped. */
    private readonly onUnreadable: UnreadableObserver = () => undefined,
  ) {
    this.publisher = new StreamPublisher(nc, APPEND_TIMEOUT_MS);
  }

  async append(subject: string, event: ParleyEvent, options: AppendOptions = {}): Promise<AppendResult> {
    const started = performance.now();
    let outcome: AppendOutcome = 'error';
    try {
      const result =
        options.expectedLastSubjectSeq === undefined
          ? await this.serial.run(subject, () => this.publishAfterLast(subject, event, options))
          : await this.publish(subject, event, options);
      outcome = result.duplicate ? 'duplicate' : 'ok';
      return result;
    } catch (err) {
      if (err instanceof WrongLastSequence) outcome = 'conflict';
      throw err;
    } finally {
      this.observe((performance.now() - started) / 1000, outcome);
    }
  }

  private tick: Promise<void> | null = null;

  /**
   * Resolves once per event-loop turn for every caller of that turn. Appends
   * started by the frames of one turn are published together: the NATS client
   * writes whatever was queued in one syscall, instead of one per frame.
   */
  private nextTurn(): Promise<void> {
    this.tick ??= new Promise<void>((resolve) =>
      setImmediate(() => {
        this.tick = null;
        resolve();
      }),
    );
    return this.tick;
  }

  /**
   * An append whose caller does not care which event precedes it (markers,
   * settings, derived membership events): still conditional, on the subject's
   * last sequence as this process knows it, re-read after a lost race, so the
   * stored PREV_SEQ_HEADER is exact.
   */
  private async publishAfterLast(subject: string, event: ParleyEvent, options: AppendOptions): Promise<AppendResult> {
    for (let attempt = 1; ; attempt++) {
      const expected = this.lastKnown.get(subject) ?? (await this.lastSubjectSeq(subject));
      try {
        const result = await this.publish(subject, event, { ...options, expectedLastSubjectSeq: expected });
        // A duplicate answers with an older sequence: the subject's last one is unknown, read it next time.
        if (result.duplicate) this.lastKnown.delete(subject);
        else this.lastKnown.set(subject, result.seq);
        return result;
      } catch (err) {
        this.lastKnown.delete(subject);
        if (err instanceof WrongLastSequence) this.autoAppendConflicts++;
        if (!(err instanceof WrongLastSequence) || attempt >= AUTO_APPEND_ATTEMPTS) throw err;
        // Another process appends to the subject too: a random pause, growing, lets one of them go first.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(200, 2 ** attempt)));
      }
    }
  }

  private async publish(subject: string, event: ParleyEvent, options: AppendOptions): Promise<AppendResult> {
    await this.nextTurn();
    const ack = await this.publisher.publish(subject, encodeEvent(event), {
      expectedStream: this.stream,
      ...(options.msgId !== undefined ? { msgId: options.msgId } : {}),
      ...(options.expectedLastSubjectSeq !== undefined
        ? { expectedLastSubjectSeq: options.expectedLastSubjectSeq, extra: { [PREV_SEQ_HEADER]: String(options.expectedLastSubjectSeq) } }
        : {}),
    });
    if (ack.ok) return { seq: ack.seq, duplicate: ack.duplicate };
    // 10071: wrong last sequence (10164 in some server versions for the same condition).
    if (ack.errCode === 10071 || ack.errCode === 10164) throw new WrongLastSequence(subject, new Error(ack.description));
    throw new Error(`the event log refused an append to ${subject}: ${ack.description} (${ack.errCode})`);
  }

  /** Stops answering appends (pending ones fail). */
  close(): void {
    this.publisher.close();
  }

  /** The stored event at `seq`, or null when it does not exist (never stored, or aged out) or cannot be read. */
  async get(seq: number): Promise<StoredEvent | null> {
    const msg = await this.jsm.direct.getMessage(this.stream, { seq });
    if (!msg) return null;
    return this.readable('get', decodeEntry(msg.seq, msg.subject, msg.data, prevSeqOf(msg.header)));
  }

  /** Reports an unreadable event a reader of this store skipped (the write side's fold calls it too). */
  reportUnreadable(reader: string, entry: { seq: number; subject: string; reason: string }): void {
    this.onUnreadable(reader, entry);
  }

  private readable(reader: string, entry: LogEntry): StoredEvent | null {
    if (entry.event) return entry;
    this.onUnreadable(reader, entry);
    return null;
  }

  /** Sequence of the last event stored on `subject`, 0 if none. */
  async lastSubjectSeq(subject: string): Promise<number> {
    const msg = await this.jsm.direct.getMessage(this.stream, { last_by_subj: subject });
    return msg ? msg.seq : 0;
  }

  /**
   * Sequence of the last event on `subject` before `seq` (0: none), for events
   * stored without PREV_SEQ_HEADER. nats-server 2.10 has no backward lookup, so
   * this bisects with "next on subject from" reads: about log2(seq) of them.
   */
  async previousOnSubject(subject: string, seq: number): Promise<number> {
    const { firstSeq } = await this.bounds();
    const nextFrom = async (from: number) => (await this.jsm.direct.getMessage(this.stream, { next_by_subj: subject, seq: from }))?.seq ?? Infinity;
    let lo = Math.max(1, firstSeq);
    let hi = seq - 1;
    if (lo > hi || (await nextFrom(lo)) >= seq) return 0;
    // Invariant: the next event from `lo` comes before `seq`. The largest such `lo` is the answer.
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if ((await nextFrom(mid)) < seq) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /**
   * The positions on `subject` after `afterSeq`, in order, one direct get each ("next on subject from"),
   * until the subject's end as the answering server knows it: no consumer is created. For a writer that
   * lost a race by a few events; the caller stops reading when it has enough (readSubjectEntries for more).
   */
  async *readSubjectEntriesDirect(subject: string, afterSeq: number): AsyncGenerator<LogEntry> {
    for (let seen = afterSeq; ; ) {
      const msg = await this.jsm.direct.getMessage(this.stream, { next_by_subj: subject, seq: seen + 1 });
      if (!msg) return;
      seen = msg.seq;
      yield decodeEntry(msg.seq, msg.subject, msg.data, prevSeqOf(msg.header));
    }
  }

  /**
   * Every readable event on `subject` with sequence > `afterSeq`, in order, up
   * to the subject's last sequence at call time. Unreadable ones are skipped
   * (and reported): one bad event must not make a whole subject unreadable.
   */
  async *readSubject(subject: string, afterSeq: number): AsyncGenerator<StoredEvent> {
    for await (const entry of this.readSubjectEntries(subject, afterSeq)) {
      const stored = this.readable('subject', entry);
      if (stored) yield stored;
    }
  }

  /** Like readSubject, but yields unreadable positions too, for readers that chain on sequences. */
  async *readSubjectEntries(subject: string, afterSeq: number): AsyncGenerator<LogEntry> {
    const last = await this.lastSubjectSeq(subject);
    if (last <= afterSeq) return;
    // Bounded pulls from an ordered consumer, not one open-ended consume(): for a minute or more after a
    // replicated stream's leader was frozen, a new consumer's pull may go unanswered (consume() then waits
    // 30-45 s for its missed-heartbeat recovery, holding the conversation's commands) or be answered 503 no
    // responders (docs/reliability.md). Either way a new consumer from the last event read is tried, a few times.
    let seen = afterSeq;
    let consumer: Consumer | null = null;
    try {
      for (let failures = 0; ; ) {
        let received = 0;
        let failure: unknown = null;
        try {
          consumer ??= await this.js.consumers.get(this.stream, { filter_subjects: [subject], opt_start_seq: seen + 1, inactive_threshold: 10_000 });
          const batch = await consumer.fetch({ max_messages: 1000, expires: SUBJECT_PULL_EXPIRES_MS });
          for await (const m of batch) {
            received++;
            seen = m.seq;
            yield decodeEntry(m.seq, m.subject, m.data, prevSeqOf(m.headers));
            if (m.seq >= last || m.info.pending === 0) return;
          }
        } catch (err) {
          // Answers of a cluster between leaders (creating the consumer or pulling): worth another consumer.
          if (!/no responders|temporarily unavailable|timeout/i.test(String((err as Error)?.message))) throw err;
          failure = err;
        }
        if (received > 0 && failure === null) {
          // Progress, and more to come: the next pull from the same consumer.
          failures = 0;
          continue;
        }
        // An empty or refused pull: a new consumer from the last event read.
        void consumer?.delete().catch(() => undefined);
        consumer = null;
        if (++failures >= SUBJECT_PULL_ATTEMPTS)
          throw new AppError('unavailable', `the event log stopped answering a read of ${subject} after sequence ${seen}`, { cause: failure ?? undefined });
        await new Promise((resolve) => setTimeout(resolve, 200 * failures));
      }
    } finally {
      if (consumer) await consumer.delete().catch(() => undefined);
    }
  }

  /**
   * Events on any of `subjects` with `afterSeq` < seq <= `untilSeq`, in log
   * order, at most `limit` of them (`truncated` says whether more exist).
   * One ordered consumer, filtered by the server, however many subjects.
   */
  async readSubjects(subjects: string[], afterSeq: number, untilSeq: number, limit: number): Promise<RangeRead> {
    if (subjects.length === 0) return { events: [], truncated: false, reached: untilSeq };
    // One subject goes as a plain filter: a multi-subject filter is slower on the server.
    return this.readRange(subjects.length === 1 ? subjects[0]! : subjects, afterSeq, untilSeq, limit);
  }

  /**
   * Every event of the stream in (afterSeq, untilSeq]. Unfiltered on purpose: nats-server 2.10 serves
   * a wildcard filter over many subjects (`<ns>.ev.>`) 28x slower than no filter (measured: 50,000
   * events in 8.2 s against 0.29 s), though both select the same messages.
   */
  readAll(afterSeq: number, untilSeq: number, limit: number): Promise<RangeRead> {
    return this.readRange(null, afterSeq, untilSeq, limit);
  }

  private async readRange(filter: string | string[] | null, afterSeq: number, untilSeq: number, limit: number): Promise<RangeRead> {
    const events: StoredEvent[] = [];
    if (afterSeq >= untilSeq) return { events, truncated: false, reached: untilSeq };
    // Bounded pulls, not one open-ended `consume()`: under a flooded event loop (a reconnect storm)
    // a long consume stopped receiving with messages still pending and never ended. Each fetch ends
    // by itself; several empty ones in a row mean the server stopped answering, and say so. A cluster
    // between leaders refuses the consumer or the pull for a while (no responders, temporarily
    // unavailable, timeout): a new consumer from the last position read is tried, as readSubjectEntries does,
    // so that a resume right after a NATS fault is answered rather than failed.
    let seen = afterSeq;
    let truncated = false;
    let done = false;
    let emptyPulls = 0;
    let failures = 0;
    let consumer: Consumer | null = null;
    try {
      while (!done) {
        try {
          if (!consumer) {
            // An ordered consumer is created on the server by get(): its info tells whether anything matches at all.
            consumer = await this.js.consumers.get(this.stream, {
              ...(filter === null ? {} : { filter_subjects: filter }),
              opt_start_seq: seen + 1,
              inactive_threshold: 10_000,
            });
            if ((await consumer.info(true)).num_pending === 0) {
              if (filter !== null || seen >= untilSeq) break;
              throw new ShortAnswer(seen, untilSeq);
            }
          }
          // Large pulls: a long read (a recent-log fill during a storm) then waits on few round trips
          // through a busy event loop.
          const batch = await consumer.fetch({ max_messages: Math.min(10_000, limit + 1 - events.length), expires: 2000 });
          let received = 0;
          for await (const m of batch) {
            received++;
            if (m.seq > untilSeq) {
              seen = untilSeq;
              done = true;
              break;
            }
            if (events.length >= limit) {
              truncated = done = true;
              break;
            }
            seen = m.seq;
            const stored = this.readable('range', decodeEntry(m.seq, m.subject, m.data, prevSeqOf(m.headers)));
            if (stored) events.push(stored);
            if (m.seq >= untilSeq) {
              done = true;
              break;
            }
            if (m.info.pending === 0) {
              if (filter === null) throw new ShortAnswer(seen, untilSeq);
              done = true;
              break;
            }
          }
          failures = 0;
          emptyPulls = received === 0 ? emptyPulls + 1 : 0;
          if (!done && emptyPulls >= 5) throw new AppError('unavailable', `the event log stopped answering a read after sequence ${seen}`);
        } catch (err) {
          if (
            !(err instanceof ShortAnswer) &&
            (err instanceof AppError || !/no responders|temporarily unavailable|timeout/i.test(String((err as Error)?.message)))
          )
            throw err;
          void consumer?.delete().catch(() => undefined);
          consumer = null;
          if (++failures >= SUBJECT_PULL_ATTEMPTS)
            throw new AppError('unavailable', `the event log stopped answering a read after sequence ${seen}`, { cause: err });
          await new Promise((resolve) => setTimeout(resolve, 200 * failures));
        }
      }
    } finally {
      if (consumer) await consumer.delete().catch(() => undefined);
    }
    return { events: withoutTombstoned(events, this.stream), truncated, reached: seen };
  }

  /** First and last sequence currently in the stream (first > last when empty). */
  async bounds(): Promise<{ firstSeq: number; lastSeq: number }> {
    const info = await this.jsm.streams.info(this.stream);
    return { firstSeq: info.state.first_seq, lastSeq: info.state.last_seq };
  }
}
