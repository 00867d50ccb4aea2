import { decodePosition, encodeShardPosition, rewindsOf, type EntityKind, type Subjects, type SyncedFrame } from '../../../contracts/index.js';

type ResyncReason = NonNullable<SyncedFrame['resync']>['reason'];
import type { Logger } from '../../shared/logger.js';
import type { EventStore, StoredEvent } from '../../shared/nats/event-store.js';
import type { ShardInfo } from '../../shared/nats/streams.js';
import type { ReadModel } from '../read-model.js';
import { eventFrame } from './event-frame.js';
import type { FrameSink, LiveHub } from './live-hub.js';

/** What the sync engine needs from a connection. */
export interface SyncConnection {
  readonly userId: string;
  send(frame: string): void;
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
  constructor(private readonly cap: number) {}
  push(seq: number, frame: string): void {
    if (this.items.length >= this.cap) this.overflowed = true;
    else this.items.push({ seq, frame });
  }
}

export interface SyncServiceDeps {
  hub: LiveHub;
  store: EventStore;
  readModel: ReadModel;
  subjects: Subjects;
  shard: ShardInfo;
  log: Logger;
  /** Most events one resume replays; beyond it the answer is `too_far_behind`. */
  maxReplay: number;
  /** How long a resume waits for the read model (its index of changed conversations) to catch up. */
  indexWaitMs?: number;
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
    const sink = new BufferSink(this.deps.maxReplay * 4);
    const userTopic = conn.hold('user', conn.userId);
    this.deps.hub.addSink(userTopic, sink);
    return { run: (token) => this.resume(conn, token, sink, userTopic) };
  }

  private async resume(conn: SyncConnection, token: string | null, sink: BufferSink, userTopic: string): Promise<void> {
    const { hub, store, readModel, subjects, shard } = this.deps;
    const topics = [userTopic];
    const started = performance.now();
    const phases: Record<string, number> = {};
    const mark = (phase: string) => (phases[phase] = Math.round(performance.now() - started));
    // Diagnostics: a resume that has not finished after 10 s says which phases it got through.
    const watchdog = setTimeout(() => this.deps.log.warn('resume still running after 10 s', { userId: conn.userId, phases }), 10_000);
    watchdog.unref();
    try {
      const start = await store.bounds();
      mark('bounds');
      let from = start.lastSeq;
      let resync: { reason: ResyncReason; conversations: string[] | null } | null = null;
      const parts = token === null ? null : decodePosition(token);
      const mine = parts?.find((p) => p.shard === shard.shard);
      if (token === null) resync = { reason: 'no_position', conversations: null };
      else if (!mine) resync = { reason: 'invalid_position', conversations: null };
      else if (mine.epoch !== shard.epoch) resync = { reason: 'epoch_changed', conversations: null };
      else if (mine.seq > start.lastSeq) resync = { reason: 'invalid_position', conversations: null };
      else from = mine.seq;

      let memberships = await readModel.memberships(conn.userId);
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
      let until = (await store.bounds()).lastSeq;
      // The read model tells which conversations changed since `from`, once it has caught up with `until`.
      const indexed = await readModel.waitFor(until, this.deps.indexWaitMs ?? 2000).then(
        () => true,
        () => false,
      );
      mark('index');
      const early = new Set(memberships.map((m) => m.id));
      if (indexed) {
        memberships = await readModel.memberships(conn.userId);
        memberships.forEach((m) => hold(m.id));
      }
      // Conversations found only now were registered after `until`: read the bound again so the
      // replay reaches the point where their buffering began, and replay them whatever the index says.
      const fresh = new Set(memberships.filter((m) => !early.has(m.id)).map((m) => m.id));
      if (fresh.size) until = (await store.bounds()).lastSeq;
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
      if (!resync && from < start.firstSeq - 1) {
        resync = { reason: 'retention', conversations: changed };
        from = until;
      }

      const userEvents = await store.readSubjects([subjects.user(conn.userId)], from, until, this.deps.maxReplay);
      const current = new Set(memberships.map((m) => m.id));
      const left = new Map<string, number>();
      for (const e of userEvents.events) {
        if (e.event.type === 'membership.left' && !current.has(e.event.data.conversationId)) left.set(e.event.data.conversationId, e.event.data.cause.conversationSeq);
      }
      const convIds = [...new Set([...changed, ...left.keys()])];
      mark('user-replay');
      const replayFrom = Math.min(from, ...startOf.values());
      const convEvents = await store.readSubjects(convIds.map((id) => subjects.conv(id)), replayFrom, until, this.deps.maxReplay);
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
        const joins = [...joinsIn(replay), ...joinsIn(extra), ...sink.items.flatMap((i) => (i.seq > 0 && i.frame.includes('"membership.joined"') ? [parseJoin(i.frame)] : []))]
          .filter((j): j is { id: string; after: number } => j !== null && !held.has(j.id));
        if (joins.length === 0) break;
        joins.forEach((j) => {
          held.add(j.id);
          hold(j.id);
        });
        const upTo = (await store.bounds()).lastSeq;
        for (const j of joins) extra.push(...(await store.readSubjects([subjects.conv(j.id)], j.after, upTo, this.deps.maxReplay)).events);
      }
      if (conn.isClosed()) return;

      const prev = new Map<string, number>();
      let last = Math.max(from, until);
      const out: { seq: number; frame: string }[] = [];
      const replayed = new Set<number>();
      for (const e of [...replay, ...extra].sort((x, y) => x.seq - y.seq)) {
        if (replayed.has(e.seq)) continue;
        const { kind, id } = entityOf(e.subject);
        out.push({ seq: e.seq, frame: eventFrame(shard, kind, id, e.seq, prev.get(e.subject) ?? null, JSON.stringify(e.event)) });
        prev.set(e.subject, e.seq);
        replayed.add(e.seq);
        if (e.seq > last) last = e.seq;
      }
      // Flush, unhook and subscribe in one tick: no live frame can fall in between. Replayed and
      // buffered frames go out in log order, so the highest position a device has seen is always a
      // safe place to resume from.
      for (const item of sink.items) {
        if (item.seq > 0 && replayed.has(item.seq)) continue;
        out.push(item);
        if (item.seq > last) last = item.seq;
      }
      out.sort((x, y) => x.seq - y.seq);
      for (const item of out) conn.send(item.frame);
      for (const topic of topics) {
        hub.removeSink(topic, sink);
        conn.subscribe(topic);
      }
      if (sink.overflowed) resync = { reason: 'too_far_behind', conversations: null };
      const synced: SyncedFrame = {
        t: 'synced',
        status: resync ? 'resync_needed' : 'complete',
        position: encodeShardPosition({ shard: shard.shard, epoch: shard.epoch, seq: last }),
        replayed: replay.length,
        ...(resync ? { resync } : {}),
      };
      conn.send(JSON.stringify(synced));
      mark('synced');
      // Slow resumes are worth an operator's attention; the phases say where the time went.
      if (phases.synced! > 2000) this.deps.log.warn('slow resume', { userId: conn.userId, replayed: replay.length, phases });
    } finally {
      clearTimeout(watchdog);
      for (const topic of topics) hub.removeSink(topic, sink);
    }
  }

  /**
   * A live connection joined a conversation: replay it from the join on
   * (the user was not subscribed before), then switch to live, with the same
   * buffered seam as a resume.
   */
  async catchUp(conn: SyncConnection, conversationId: string, afterSeq: number): Promise<void> {
    const { hub, store, subjects, shard } = this.deps;
    const topic = `conv/${conversationId}`;
    if (conn.holds(topic) || conn.isClosed()) return;
    conn.hold('conv', conversationId);
    const sink = new BufferSink(this.deps.maxReplay * 4);
    hub.addSink(topic, sink);
    try {
      const until = (await store.bounds()).lastSeq;
      const { events } = await store.readSubjects([subjects.conv(conversationId)], afterSeq, until, this.deps.maxReplay);
      if (conn.isClosed()) return;
      const sent = new Set<number>();
      let prev: number | null = null;
      for (const e of events) {
        conn.send(eventFrame(shard, 'conv', conversationId, e.seq, prev, JSON.stringify(e.event)));
        prev = e.seq;
        sent.add(e.seq);
      }
      for (const item of sink.items) if (!(item.seq > 0 && sent.has(item.seq))) conn.send(item.frame);
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

function entityOf(subject: string): { kind: EntityKind; id: string } {
  const parts = subject.split('.');
  return { kind: parts[2] as EntityKind, id: parts[3]! };
}

function joinsIn(events: StoredEvent[]): { id: string; after: number }[] {
  return events.flatMap((e) => (e.event.type === 'membership.joined' ? [{ id: e.event.data.conversationId, after: e.event.data.cause.conversationSeq - 1 }] : []));
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
