import { decodePosition, encodeShardPosition, rewindsOf, type EntityKind, type Subjects, type SyncedFrame } from '../../../contracts/index.js';

type ResyncReason = NonNullable<SyncedFrame['resync']>['reason'];
import type { Logger } from '../../observability/logger.js';
import type { StoredEvent } from '../../event-log/event-store.js';
import type { ShardInfo } from '../../event-log/streams.js';
import type { Membership, ReadModel } from '../read-model.js';
import type { CoalescedBounds } from './coalesced-bounds.js';
import type { ConcurrencyGate } from './concurrency-gate.js';
import { storedEventFrame } from './event-frame.js';
import type { FrameSink, LiveHub } from './live-hub.js';
import type { EventReader } from './recent-log.js';

/** What the sync engine needs from a connection. */
export interface SyncConnection {
  readonly userId: string;
  send(frame: string): void;
  /** Several frames in one write (one cork): a resume's replay. */
  sendAll(frames: string[]): void;
  isClosed(): boolean;
  /** Takes (and records, for release on close) a hub reference on the entity; returns its topic. */
  hold(kind: EntityKind, id: string): string;
  holds(topic: string): boolean;
  /** Subscribes the socket to the topic's live fan-out. */
  subscribe(topic: string): void;
}

/** Collects a topic's live frames while the connection is still replaying. */
class BufferSink implements FrameSink {
  readonly items: { seq: number; frame: string }[] = [];
  overflowed = false;
  constructor(
    private readonly cap: number,
    readonly userId: string,
  ) {}
  push(seq: number, frame: string): void {
    if (this.items.length >= this.cap) this.overflowed = true;
    else this.items.push({ seq, frame });
  }
}

export interface SyncServiceDeps {
  hub: LiveHub;
  /** Replay reads: the gateway's recent log in front of the event store. */
  reader: EventReader;
  /** Stream bounds shared by concurrent resumes. */
  bounds: CoalescedBounds;
  /** Caps resumes running at once; the others wait their turn (welcome already sent, live events buffered). */
  gate: ConcurrencyGate;
  readModel: ReadModel;
  subjects: Subjects;
  shard: ShardInfo;
  log: Logger;
  /** Most events one resume replays; beyond it the answer is `too_far_behind`. */
  maxReplay: number;
  /** How long a resume waits for the read model (its index of changed conversations) to catch up. */
  indexWaitMs?: number;
  /**
   * The sequence of the event before `seq` on `subject` (0: none), for events
   * stored without their `prevSeq` (by versions before it was recorded).
   */
  previousOnSubject?: (subject: string, seq: number) => Promise<number>;
}

/**
 * Resume and catch-up. The seam between replay and live delivery is exact:
 * live frames of every topic the connection needs are buffered *before* the
 * replay range is fixed; the replay reads the log up to that point; buffered
 * frames not already replayed follow; the socket joins the uWebSockets topics
 * in the same tick. Nothing is lost in between and nothing is sent twice.
 */
export class SyncService {
  constructor(private readonly deps: SyncServiceDeps) {}

  /** Synchronous first step (at open): from now on the user's own events are kept for this connection. */
  begin(conn: SyncConnection): { run(token: string | null): Promise<void> } {
    const sink = new BufferSink(this.deps.maxReplay * 4, conn.userId);
    const userTopic = conn.hold('user', conn.userId);
    this.deps.hub.addSink(userTopic, sink);
    return {
      run: (token) =>
        this.deps.gate
          .run(async () => {
            if (!conn.isClosed()) await this.resume(conn, token, sink, userTopic);
          })
          .finally(() => this.deps.hub.removeSink(userTopic, sink)),
    };
  }

  private async resume(conn: SyncConnection, token: string | null, sink: BufferSink, userTopic: string): Promise<void> {
    const { hub, reader, bounds, readModel, subjects, shard } = this.deps;
    const topics = [userTopic];
    const started = performance.now();
    const phases: Record<string, number> = {};
    const mark = (phase: string) => (phases[phase] = Math.round(performance.now() - started));
    // Diagnostics: a resume that has not finished after 10 s says which phases it got through.
    const watchdog = setTimeout(() => this.deps.log.warn('resume still running after 10 s', { userId: conn.userId, phases }), 10_000);
    watchdog.unref();
    try {
      const parts = token === null ? null : decodePosition(token);
      const mine = parts?.find((p) => p.shard === shard.shard);
      const snapshot = await readModel.resumeIndex(conn.userId);
      let memberships = snapshot.memberships;
      const hold = (id: string) => {
        const topic = conn.hold('conv', id);
        if (!topics.includes(topic)) {
          topics.push(topic);
          hub.addSink(topic, sink);
        }
      };
      memberships.forEach((m) => hold(m.id));
      mark('memberships');
      // Every live event after this point is buffered; the replay covers (from, until].
      const bounds0 = await bounds.read();
      mark('bounds');
      let until = bounds0.lastSeq;
      let from = until;
      let resync: { reason: ResyncReason; conversations: string[] | null } | null = null;
      if (token === null) resync = { reason: 'no_position', conversations: null };
      else if (!mine) resync = { reason: 'invalid_position', conversations: null };
      else if (mine.epoch !== shard.epoch) resync = { reason: 'epoch_changed', conversations: null };
      else if (mine.seq > until) resync = { reason: 'invalid_position', conversations: null };
      else from = mine.seq;
      // The read model tells which conversations changed since `from`, once it has caught up with `until`.
      // The snapshot was taken before `until` was read, so it can at most equal it: then it is already exact.
      let indexed = snapshot.checkpoint >= until;
      const early = memberships;
      if (!indexed) {
        indexed = await readModel.waitFor(until, this.deps.indexWaitMs ?? 2000).then(
          () => true,
          () => false,
        );
        if (indexed) {
          memberships = await readModel.memberships(conn.userId);
          memberships.forEach((m) => hold(m.id));
        }
      }
      mark('index');
      // Conversations found only now were registered after `until`: read the bound again so the
      // replay reaches the point where their buffering began, and replay them whatever the index says.
      const earlyIds = new Set(early.map((m) => m.id));
      const fresh = new Set(memberships.filter((m) => !earlyIds.has(m.id)).map((m) => m.id));
      if (fresh.size) until = (await bounds.read()).lastSeq;
      // Left after `until` (the index ran ahead of it): still a member for the whole replay range.
      const leftLater = leftAfter(sink, until);
      const stillMember = new Set(memberships.map((m) => m.id));
      const leaving: Membership[] = early.filter((m) => !stillMember.has(m.id) && leftLater.has(m.id));
      memberships = [...memberships, ...leaving];
      leaving.forEach((m) => fresh.add(m.id));
      const rewound = new Set(Object.keys(token ? rewindsOf(token) : {}));
      const changed = memberships.filter((m) => !indexed || m.lastSeq > from || rewound.has(m.id) || fresh.has(m.id)).map((m) => m.id);
      // A conversation joined after the position is replayed from the join, not from the position:
      // a live catch-up of it may have been cut short when the device went away.
      const startOf = new Map(memberships.filter((m) => indexed && m.joinedSeq > from).map((m) => [m.id, m.joinedSeq - 1]));
      // Rewinds the device asked for: conversations whose history it has not received since joining.
      if (!resync) {
        const current = new Set(memberships.map((m) => m.id));
        for (const [id, after] of Object.entries(rewindsOf(token))) {
          if (current.has(id) && after < from) startOf.set(id, Math.min(after, startOf.get(id) ?? after));
        }
      }
      if (!resync && from < bounds0.firstSeq - 1) {
        resync = { reason: 'retention', conversations: changed };
        from = until;
      }

      const userEvents = await reader.readSubjects([subjects.user(conn.userId)], from, until, this.deps.maxReplay);
      const current = new Set(memberships.map((m) => m.id));
      const left = new Map<string, number>();
      for (const e of userEvents.events) {
        if (e.event.type === 'membership.left' && !current.has(e.event.data.conversationId))
          left.set(e.event.data.conversationId, e.event.data.cause.conversationSeq);
      }
      const convIds = [...new Set([...changed, ...left.keys()])];
      mark('user-replay');
      const replayFrom = Math.min(from, ...startOf.values());
      const convEvents = await reader.readSubjects(
        convIds.map((id) => subjects.conv(id)),
        replayFrom,
        until,
        this.deps.maxReplay,
      );
      await this.resolvePrevSeqs(userEvents.events);
      await this.resolvePrevSeqs(convEvents.events);
      let replay: StoredEvent[] = [];
      if (userEvents.truncated || convEvents.truncated || userEvents.events.length + convEvents.events.length > this.deps.maxReplay) {
        resync = { reason: 'too_far_behind', conversations: convIds };
      } else {
        // Conversations left while away: their events up to the removal, nothing after.
        const visible = convEvents.events.filter((e) => {
          const id = (e.event.data as { conversationId: string }).conversationId;
          return e.seq > (startOf.get(id) ?? from) && (!left.has(id) || e.seq <= left.get(id)!);
        });
        replay = [...userEvents.events, ...visible].sort((a, b) => a.seq - b.seq);
      }
      if (conn.isClosed()) return;

      // Conversations joined while away or during this resume that the index did not list: replay
      // them from the join, inside this resume, so the device gets their history before the
      // `membership.joined` frame and its position never passes events it has not received.
      const held = new Set(memberships.map((m) => m.id));
      const extra: StoredEvent[] = [];
      for (let round = 0; round < 3; round++) {
        const joins = [
          ...joinsIn(replay),
          ...joinsIn(extra),
          ...sink.items.flatMap((i) => (i.seq > 0 && i.frame.includes('"membership.joined"') ? [parseJoin(i.frame)] : [])),
        ].filter((j): j is { id: string; after: number } => j !== null && !held.has(j.id));
        if (joins.length === 0) break;
        joins.forEach((j) => {
          held.add(j.id);
          hold(j.id);
        });
        const upTo = (await bounds.read()).lastSeq;
        for (const j of joins) {
          const { events } = await reader.readSubjects([subjects.conv(j.id)], j.after, upTo, this.deps.maxReplay);
          await this.resolvePrevSeqs(events);
          extra.push(...events);
        }
      }
      if (conn.isClosed()) return;

      let last = Math.max(from, until);
      const out: { seq: number; frame: string }[] = [];
      const replayed = new Set<number>();
      for (const e of [...replay, ...extra].sort((x, y) => x.seq - y.seq)) {
        if (replayed.has(e.seq)) continue;
        out.push({ seq: e.seq, frame: storedEventFrame(shard, e, e.prevSeq ?? 0) });
        replayed.add(e.seq);
        if (e.seq > last) last = e.seq;
      }
      // Replayed and buffered frames go out in log order, so the highest position a device has seen is always a
      // safe place to resume from.
      for (const item of sink.items) {
        if (item.seq > 0 && replayed.has(item.seq)) continue;
        out.push(item);
        if (item.seq > last) last = item.seq;
      }
      out.sort((x, y) => x.seq - y.seq);
      for (const topic of topics) {
        hub.removeSink(topic, sink);
        conn.subscribe(topic);
      }
      if (sink.overflowed) resync = { reason: 'too_far_behind', conversations: null };
      const synced: SyncedFrame = {
        t: 'synced',
        status: resync ? 'resync_needed' : 'complete',
        position: encodeShardPosition({ shard: shard.shard, epoch: shard.epoch, seq: last }),
        // Event frames this resume sent before `synced`: replayed from the log, and live ones that arrived meanwhile.
        replayed: out.filter((item) => item.seq > 0).length,
        ...(resync ? { resync } : {}),
      };
      // Subscribed first, sent in the same tick: no live frame can come in between.
      conn.sendAll([...out.map((item) => item.frame), JSON.stringify(synced)]);
      mark('synced');
      // Slow resumes are worth an operator's attention; the phases say where the time went.
      if (phases.synced! > 2000) this.deps.log.warn('slow resume', { userId: conn.userId, replayed: synced.replayed, phases });
    } finally {
      clearTimeout(watchdog);
      for (const topic of topics) hub.removeSink(topic, sink);
    }
  }

  private resolvePrevSeqs(events: StoredEvent[]): Promise<void> {
    return resolvePrevSeqs(events, this.deps.previousOnSubject);
  }

  /**
   * A live connection joined a conversation: replay it from the join on
   * (the user was not subscribed before), then switch to live, with the same
   * buffered seam as a resume.
   */
  async catchUp(conn: SyncConnection, conversationId: string, afterSeq: number): Promise<void> {
    const { hub, reader, bounds, subjects, shard } = this.deps;
    const topic = `conv/${conversationId}`;
    if (conn.holds(topic) || conn.isClosed()) return;
    conn.hold('conv', conversationId);
    const sink = new BufferSink(this.deps.maxReplay * 4, conn.userId);
    hub.addSink(topic, sink);
    try {
      const until = (await bounds.read()).lastSeq;
      const { events } = await reader.readSubjects([subjects.conv(conversationId)], afterSeq, until, this.deps.maxReplay);
      await this.resolvePrevSeqs(events);
      if (conn.isClosed()) return;
      const sent = new Set<number>();
      const frames: string[] = [];
      for (const e of events) {
        frames.push(storedEventFrame(shard, e, e.prevSeq ?? 0));
        sent.add(e.seq);
      }
      for (const item of sink.items) if (!(item.seq > 0 && sent.has(item.seq))) frames.push(item.frame);
      conn.sendAll(frames);
      hub.removeSink(topic, sink);
      conn.subscribe(topic);
    } catch (err) {
      // A connection closed meanwhile (or a gateway shutting down) explains itself; anything else is a fault.
      if (conn.isClosed()) this.deps.log.debug('catch-up abandoned: connection closed', { userId: conn.userId, conversationId });
      else this.deps.log.error('catch-up after a join failed', { userId: conn.userId, conversationId, err });
    } finally {
      hub.removeSink(topic, sink);
    }
  }
}

/**
 * Fills in `prevSeq` where the log did not record it (events stored by older
 * versions). `events` holds every event of its subjects in the range read, so
 * a later one's predecessor is the one before it in the list; only the first
 * of a subject needs a lookup. Stored events are immutable: the answer is kept
 * on the shared object.
 */
export async function resolvePrevSeqs(
  events: StoredEvent[],
  previousOnSubject: ((subject: string, seq: number) => Promise<number>) | undefined,
): Promise<void> {
  const lastOf = new Map<string, number>();
  for (const e of events) {
    if (e.prevSeq === undefined || e.prevSeq === null) {
      const before = lastOf.get(e.subject);
      e.prevSeq = before ?? (previousOnSubject ? await previousOnSubject(e.subject, e.seq) : 0);
    }
    lastOf.set(e.subject, e.seq);
  }
}

function joinsIn(events: StoredEvent[]): { id: string; after: number }[] {
  return events.flatMap((e) =>
    e.event.type === 'membership.joined' ? [{ id: e.event.data.conversationId, after: e.event.data.cause.conversationSeq - 1 }] : [],
  );
}

/** Conversations the buffered user events say were left after `until`. */
function leftAfter(sink: BufferSink, until: number): Set<string> {
  const ids = new Set<string>();
  for (const item of sink.items) {
    if (item.seq <= until || !item.frame.includes('"membership.left"')) continue;
    const f = JSON.parse(item.frame) as { event?: { type?: string; data?: { conversationId?: string } } };
    if (f.event?.type === 'membership.left' && f.event.data?.conversationId) ids.add(f.event.data.conversationId);
  }
  return ids;
}

function parseJoin(frame: string): { id: string; after: number } | null {
  try {
    const f = JSON.parse(frame) as { event?: { type?: string; data?: { conversationId: string; cause: { conversationSeq: number } } } };
    if (f.event?.type !== 'membership.joined' || !f.event.data) return null;
    return { id: f.event.data.conversationId, after: f.event.data.cause.conversationSeq - 1 };
  } catch {
    return null;
  }
}
