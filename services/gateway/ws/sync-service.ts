import { encodePosition, rewindsOf, type EntityKind, type Subjects, type SyncedFrame } from '../../../contracts/index.js';
import type { Logger } from '../../observability/logger.js';
import type { StoredEvent } from '../../event-log/event-store.js';
import type { Membership, ReadModel } from '../read-model.js';
import type { ConcurrencyGate } from './concurrency-gate.js';
import { storedEventFrame } from './event-frame.js';
import type { FrameSink, LiveHub } from './live-hub.js';
import { combinedResync, shardRanges, type Resync } from './shard-ranges.js';
import type { ShardReaders } from './shard-readers.js';

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

/** A frame to send, with the shard and sequence of its event (seq 0: an ephemeral frame). */
interface OutFrame {
  shard: number;
  seq: number;
  frame: string;
}

/** Replayed and buffered frames are the same event when shard and sequence match (sequences are per shard). */
const eventKey = (shard: number, seq: number) => `${shard}:${seq}`;

/** Collects a topic's live frames while the connection is still replaying. */
class BufferSink implements FrameSink {
  readonly items: OutFrame[] = [];
  overflowed = false;
  constructor(
    private readonly cap: number,
    readonly userId: string,
  ) {}
  push(shard: number, seq: number, frame: string): void {
    if (this.items.length >= this.cap) this.overflowed = true;
    else this.items.push({ shard, seq, frame });
  }
}

export interface SyncServiceDeps {
  hub: LiveHub;
  /** Per shard: replay reads (the gateway's recent log in front of the shard's store) and stream bounds shared by concurrent resumes. */
  shards: ShardReaders;
  /** Caps resumes running at once; the others wait their turn (welcome already sent, live events buffered). */
  gate: ConcurrencyGate;
  readModel: ReadModel;
  subjects: Subjects;
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
 *
 * With several shards (STREAM_SHARDS) all of this is per shard: each has its
 * own range (from, until], continuity answer and position entry, and every
 * entity is compared against its own shard's range (shard-ranges.ts).
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
    const { hub, shards, readModel, subjects } = this.deps;
    const topics = [userTopic];
    const started = performance.now();
    const phases: Record<string, number> = {};
    const mark = (phase: string) => (phases[phase] = Math.round(performance.now() - started));
    // Diagnostics: a resume that has not finished after 10 s says which phases it got through.
    const watchdog = setTimeout(() => this.deps.log.warn('resume still running after 10 s', { userId: conn.userId, phases }), 10_000);
    watchdog.unref();
    try {
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
      // Every live event after this point is buffered; the replay covers (from, until] of every shard.
      const ranges = shardRanges(
        token,
        shards.all.map((s) => s.info),
        await shards.readBounds(),
      );
      mark('bounds');
      const shardOf = (id: string) => subjects.shardOf(id);
      const rangeOf = (id: string) => ranges[shardOf(id)]!;
      // The read model tells which conversations changed since `from`, once it has caught up with `until` in every
      // shard. The snapshot was taken before the `until`s were read, so it can at most equal them: then it is exact.
      let indexed = ranges.every((r, k) => (snapshot.checkpoints[k] ?? 0) >= r.until);
      const early = memberships;
      if (!indexed) {
        indexed = await readModel
          .waitForAll(
            ranges.map((r) => r.until),
            this.deps.indexWaitMs ?? 2000,
          )
          .then(
            () => true,
            () => false,
          );
        if (indexed) {
          memberships = await readModel.memberships(conn.userId);
          memberships.forEach((m) => hold(m.id));
        }
      }
      mark('index');
      // Conversations found only now were registered after `until`: read the bounds again so the
      // replay reaches the point where their buffering began, and replay them whatever the index says.
      const earlyIds = new Set(early.map((m) => m.id));
      const fresh = new Set(memberships.filter((m) => !earlyIds.has(m.id)).map((m) => m.id));
      if (fresh.size) (await shards.readBounds()).forEach((b, k) => (ranges[k]!.until = b.lastSeq));
      // Left after `until` (the index ran ahead of it): still a member for the whole replay range.
      const userShard = shardOf(conn.userId);
      const leftLater = leftAfter(sink, userShard, ranges[userShard]!.until);
      const stillMember = new Set(memberships.map((m) => m.id));
      const leaving: Membership[] = early.filter((m) => !stillMember.has(m.id) && leftLater.has(m.id));
      memberships = [...memberships, ...leaving];
      leaving.forEach((m) => fresh.add(m.id));
      const rewinds = token ? rewindsOf(token) : {};
      const changed = memberships.filter((m) => !indexed || m.lastSeq > rangeOf(m.id).from || m.id in rewinds || fresh.has(m.id)).map((m) => m.id);
      // A conversation joined after the position is replayed from the join, not from the position:
      // a live catch-up of it may have been cut short when the device went away.
      const startOf = new Map(memberships.filter((m) => indexed && m.joinedSeq > rangeOf(m.id).from).map((m) => [m.id, m.joinedSeq - 1]));
      // Rewinds the device asked for: conversations whose history it has not received since joining.
      const current = new Set(memberships.map((m) => m.id));
      for (const [id, after] of Object.entries(rewinds)) {
        const range = rangeOf(id);
        if (!range.resync && current.has(id) && after < range.from) startOf.set(id, Math.min(after, startOf.get(id) ?? after));
      }
      for (const r of ranges) {
        if (r.resync || r.from >= r.firstSeq - 1) continue;
        r.resync = { reason: 'retention', conversations: changed.filter((id) => shardOf(id) === r.info.shard) };
        r.from = r.until;
      }

      const userRange = ranges[userShard]!;
      const userEvents = await shards.shard(userShard).reader.readSubjects([subjects.user(conn.userId)], userRange.from, userRange.until, this.deps.maxReplay);
      const left = new Map<string, number>();
      for (const e of userEvents.events) {
        // The removal's position is the conversation's event, in the conversation's shard.
        if (e.event.type === 'membership.left' && !current.has(e.event.data.conversationId))
          left.set(e.event.data.conversationId, e.event.data.cause.conversationSeq);
      }
      const convIds = [...new Set([...changed, ...left.keys()])];
      mark('user-replay');
      const convEvents = await Promise.all(
        ranges.map((r, k) => {
          const ids = convIds.filter((id) => shardOf(id) === k);
          const replayFrom = Math.min(r.from, ...ids.map((id) => startOf.get(id) ?? r.from));
          return shards.shard(k).reader.readSubjects(
            ids.map((id) => subjects.conv(id)),
            replayFrom,
            r.until,
            this.deps.maxReplay,
          );
        }),
      );
      await this.resolvePrevSeqs(userEvents.events);
      for (const c of convEvents) await this.resolvePrevSeqs(c.events);
      const replay: StoredEvent[] = [];
      ranges.forEach((r, k) => {
        const own = k === userShard ? userEvents : { events: [], truncated: false };
        const conv = convEvents[k]!;
        if (own.truncated || conv.truncated || own.events.length + conv.events.length > this.deps.maxReplay) {
          // Without the user's own events, which conversations it has is unknown too: every one is listed.
          r.resync = { reason: 'too_far_behind', conversations: k === userShard ? convIds : convIds.filter((id) => shardOf(id) === k) };
          r.from = r.until;
          return;
        }
        // Conversations left while away: their events up to the removal, nothing after.
        const visible = conv.events.filter((e) => {
          const id = (e.event.data as { conversationId: string }).conversationId;
          return e.seq > (startOf.get(id) ?? r.from) && (!left.has(id) || e.seq <= left.get(id)!);
        });
        replay.push(...own.events, ...visible);
      });
      if (conn.isClosed()) return;

      // Conversations joined while away or during this resume that the index did not list: replay
      // them from the join, inside this resume, so the device gets their history along with the
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
        const upTo = await shards.readBounds();
        for (const j of joins) {
          // `after` is a position of the conversation's own shard (the join's cause).
          const k = shardOf(j.id);
          const { events } = await shards.shard(k).reader.readSubjects([subjects.conv(j.id)], j.after, upTo[k]!.lastSeq, this.deps.maxReplay);
          await this.resolvePrevSeqs(events);
          extra.push(...events);
        }
      }
      if (conn.isClosed()) return;

      const last = ranges.map((r) => Math.max(r.from, r.until));
      const out: OutFrame[] = [];
      const replayed = new Set<string>();
      for (const e of [...replay, ...extra]) {
        const shard = shards.ofSubject(e.subject).info;
        const key = eventKey(shard.shard, e.seq);
        if (replayed.has(key)) continue;
        out.push({ shard: shard.shard, seq: e.seq, frame: storedEventFrame(shard, e, e.prevSeq ?? 0) });
        replayed.add(key);
        last[shard.shard] = Math.max(last[shard.shard]!, e.seq);
      }
      for (const item of sink.items) {
        if (item.seq > 0 && replayed.has(eventKey(item.shard, item.seq))) continue;
        out.push(item);
        if (item.seq > 0) last[item.shard] = Math.max(last[item.shard]!, item.seq);
      }
      // Replayed and buffered frames go out in each shard's log order, so the highest position a device has seen
      // in a shard is always a safe place to resume that shard from. (Ordering by sequence alone does that: it keeps
      // every shard's frames increasing; with one shard it is the log's order.)
      out.sort((x, y) => x.seq - y.seq || x.shard - y.shard);
      for (const topic of topics) {
        hub.removeSink(topic, sink);
        conn.subscribe(topic);
      }
      let resync: Resync | null = combinedResync(ranges, (k) => [...current].filter((id) => shardOf(id) === k));
      if (sink.overflowed) resync = { reason: 'too_far_behind', conversations: null };
      const synced: SyncedFrame = {
        t: 'synced',
        status: resync ? 'resync_needed' : 'complete',
        // Every shard's entry: the device resumes each shard from its own.
        position: encodePosition(ranges.map((r, k) => ({ shard: r.info.shard, epoch: r.info.epoch, seq: last[k]! }))),
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
    const { hub, shards, subjects } = this.deps;
    const topic = `conv/${conversationId}`;
    // `afterSeq` (the join's cause) and everything read here are in the conversation's shard.
    const { info: shard, reader, bounds } = shards.ofEntity(conversationId);
    if (conn.holds(topic) || conn.isClosed()) return;
    conn.hold('conv', conversationId);
    const sink = new BufferSink(this.deps.maxReplay * 4, conn.userId);
    hub.addSink(topic, sink);
    try {
      const until = (await bounds.read()).lastSeq;
      const { events } = await reader.readSubjects([subjects.conv(conversationId)], afterSeq, until, this.deps.maxReplay);
      await this.resolvePrevSeqs(events);
      if (conn.isClosed()) return;
      const sent = new Set<string>();
      const frames: string[] = [];
      for (const e of events) {
        frames.push(storedEventFrame(shard, e, e.prevSeq ?? 0));
        sent.add(eventKey(shard.shard, e.seq));
      }
      for (const item of sink.items) if (!(item.seq > 0 && sent.has(eventKey(item.shard, item.seq)))) frames.push(item.frame);
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

/** Conversations the buffered user events (of the user's shard `userShard`) say were left after `until`. */
function leftAfter(sink: BufferSink, userShard: number, until: number): Set<string> {
  const ids = new Set<string>();
  for (const item of sink.items) {
    if (item.shard !== userShard || item.seq <= until || !item.frame.includes('"membership.left"')) continue;
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
