import { randomUUID } from 'node:crypto';
import { CloseCode, type ClientFrame, type Command, type ErrorFrame, type WelcomeFrame, MAX_TEXT_CODE_POINTS } from '../../../contracts/index.js';
import type { AuthenticatedUser, Authenticator } from '../../auth/auth.js';
import type { Config } from '../../runtime/config.js';
import { AppError, toAppError } from '../../runtime/errors.js';
import type { Logger } from '../../observability/logger.js';
import { KeyedRateLimiter, TokenBucket } from '../../limits/rate-limit.js';
import type { CommandDispatcher } from '../command-dispatcher.js';
import type { PresenceService } from '../infra/presence.js';
import type { ReadModel } from '../read-model.js';
import { guarded } from '../guard.js';
import type { OriginPolicy } from '../http/origin-policy.js';
import { writeResult } from '../http/router.js';
import { bearerFromProtocols } from './ws-auth.js';
import type { HttpResponse, TemplatedApp, WebSocket } from '../uws.js';
import type { ConnectionState } from './connection-state.js';
import type { LiveHub } from './live-hub.js';
import { topicFor } from './live-hub.js';
import { parseClientFrame } from './parse-frame.js';
import type { SyncConnection, SyncService } from './sync-service.js';

export interface SocketServerDeps {
  config: Config;
  log: Logger;
  auth: Authenticator;
  commands: CommandDispatcher;
  readModel: ReadModel;
  hub: LiveHub;
  presence: PresenceService;
  sync: SyncService;
  metrics?: import('../gateway-metrics.js').SocketMetrics;
  /** Browser origins allowed to open a socket (the same decision as CORS); none given: any. */
  origins?: OriginPolicy;
}

/** Typing signals are forwarded at most this often per connection and conversation. */
const TYPING_THROTTLE_MS = 2000;

/** Frames above the soft limit get an error frame; above this hard limit uWebSockets drops the connection (clients see 1006). */
export const HARD_FRAME_LIMIT_BYTES = 1 << 20;
const BAD_FRAME_LIMIT = 50;
const SLOW_READER_SWEEP_MS = 250;
const BAD_FRAME_WINDOW_MS = 10_000;
/**
 * Live events reach sockets through uWebSockets' topics, which this code does
 * not see per socket. The subscribers of topics published to are checked this
 * long after a publish, so a slow reader is closed within one such interval of
 * traffic past MAX_BUFFERED_BYTES (the periodic sweep alone let 0.7-0.9 MB
 * pile up per 250 ms in the resume test).
 */
const PUBLISHED_CHECK_MS = 20;
/** How long a client refused for too many connections is told to wait: about how long a closing tab takes to go. */
const CONNECTION_RETRY_AFTER_MS = 5000;

type Socket = WebSocket<ConnectionState>;

/**
 * The WebSocket endpoint: authenticates the upgrade, subscribes the
 * connection to its user's and conversations' live topics, and turns client
 * frames into commands. Business rules live in the command layer; this file
 * only translates between frames and calls.
 */
export class SocketServer {
  private readonly sockets = new Map<string, Map<string, Socket>>();
  /** The sockets subscribed to each live topic, to find slow readers among a publish's recipients. */
  private readonly topicSockets = new Map<string, Set<Socket>>();
  private readonly publishedTopics = new Set<string>();
  private publishedCheck: NodeJS.Timeout | null = null;
  private readonly log: Logger;
  private readonly sendLimiter: KeyedRateLimiter;

  constructor(private readonly deps: SocketServerDeps) {
    this.log = deps.log.child({ component: 'ws' });
    const { sendsPerSecond } = deps.config.limits;
    this.sendLimiter = new KeyedRateLimiter(sendsPerSecond, sendsPerSecond * 3);
    deps.hub.beforeUserFrame = (userId, raw) => this.onUserEvent(userId, raw);
  }

  get connectionCount(): number {
    let n = 0;
    for (const m of this.sockets.values()) n += m.size;
    return n;
  }

  private sweepTimer: NodeJS.Timeout | null = null;

  /**
   * Bounded memory per connection: a socket whose unsent bytes exceed
   * MAX_BUFFERED_BYTES is closed with `slowReader` (3001), which tells the
   * client to reconnect and resume from its position.
   */
  private sweepSlowReaders(): void {
    const limit = this.deps.config.gateway.maxBufferedBytes;
    for (const byConn of this.sockets.values()) {
      for (const ws of [...byConn.values()]) {
        if (!ws.getUserData().closed && ws.getBufferedAmount() > limit) ws.end(CloseCode.slowReader, 'slow reader: reconnect and resume');
      }
    }
  }

  attach(app: TemplatedApp, path = '/v1/ws'): void {
    this.sweepTimer = setInterval(
      guarded(this.log, 'slow reader sweep', () => this.sweepSlowReaders()),
      SLOW_READER_SWEEP_MS,
    );
    this.sweepTimer.unref();
    const { gateway } = this.deps.config;
    app.ws<ConnectionState>(path, {
      maxPayloadLength: HARD_FRAME_LIMIT_BYTES,
      // No uWebSockets cap (0): past its cap uWebSockets silently drops frames, the 3001 close frame
      // included, and the client saw 1006 instead. The bound is ours: a connection over
      // MAX_BUFFERED_BYTES is closed with 3001 (sendFrames, checkPublished, sweepSlowReaders).
      maxBackpressure: 0,
      idleTimeout: gateway.heartbeatSeconds,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        const url = new URLSearchParams(req.getQuery() ?? '');
        const header = req.getHeader('authorization');
        const position = url.get('position');
        const key = req.getHeader('sec-websocket-key');
        const offered = req.getHeader('sec-websocket-protocol');
        const extensions = req.getHeader('sec-websocket-extensions');
        // Browsers cannot set headers on a WebSocket: they carry the token as a subprotocol
        // (`parley.bearer.<token>`), which, unlike `?token=`, no proxy or access log records.
        const viaProtocol = bearerFromProtocols(offered);
        const token = viaProtocol?.token ?? url.get('token') ?? (header.startsWith('Bearer ') ? header.slice(7) : '');
        // The handshake must answer one protocol the client offered, and never the one holding the token.
        const protocol = viaProtocol ? viaProtocol.accept : offered;
        // A page from a foreign origin must not ride a user's token into a socket (cross-site WebSocket hijacking).
        const origin = req.getHeader('origin');
        if (this.deps.origins && !this.deps.origins.allows(origin, req.getHeader('host'))) {
          this.refuseUpgrade(res, new AppError('forbidden', 'this origin may not open a WebSocket here (CORS_ALLOWED_ORIGINS)'));
          return;
        }
        // Answered synchronously, inside uWebSockets' own (corked) handler: an upgrade from a later
        // `res.cork` callback can close the new socket without a close frame (uNetworking/uWebSockets#1928).
        let user: AuthenticatedUser;
        try {
          user = this.deps.auth.verifySync(token);
        } catch (err) {
          this.refuseUpgrade(res, toAppError(err));
          return;
        }
        // Counted here, not at open: the socket opens inside res.upgrade below, so there is no window between.
        const open = this.sockets.get(user.userId)?.size ?? 0;
        if (open >= this.deps.config.limits.connectionsPerUser) {
          const max = this.deps.config.limits.connectionsPerUser;
          this.refuseUpgrade(
            res,
            new AppError('too_many_connections', `at most ${max} open connections per user on this gateway; close one first`, {
              retryAfterMs: CONNECTION_RETRY_AFTER_MS,
            }),
          );
          return;
        }
        const state: ConnectionState = {
          userId: user.userId,
          connectionId: randomUUID(),
          expiresAt: user.expiresAt,
          position: position || null,
          syncing: true,
          topics: new Set(),
          closed: false,
          badFrames: 0,
          badFramesWindowStart: Date.now(),
          expiryTimer: null,
          frameBucket: new TokenBucket(this.deps.config.limits.framesPerSecond, this.deps.config.limits.framesPerSecond * 2),
          rateLimitAnswered: false,
          lastTyping: new Map(),
        };
        res.upgrade(state, key, protocol, extensions, context);
      },
      open: (ws) => this.onOpen(ws),
      message: (ws, data, isBinary) => this.onMessage(ws, data, isBinary),
      close: (ws, code) => this.onClose(ws, code),
    });
  }

  /** Refuses an upgrade with the standard error body (and Retry-After on a 429). */
  private refuseUpgrade(res: HttpResponse, err: AppError): void {
    this.deps.metrics?.error(err.code);
    writeResult(res, { status: err.status, body: err.toBody() });
  }

  /**
   * Called after every publish to a live topic: schedules a check of that
   * topic's subscribers (see PUBLISHED_CHECK_MS). Coalesced, so a busy topic
   * costs one pass over its sockets per interval, not one per event.
   */
  notePublished(topic: string): void {
    if (!this.topicSockets.has(topic)) return;
    this.publishedTopics.add(topic);
    this.publishedCheck ??= setTimeout(
      guarded(this.log, 'published topic check', () => this.checkPublished()),
      PUBLISHED_CHECK_MS,
    );
  }

  private checkPublished(): void {
    this.publishedCheck = null;
    const limit = this.deps.config.gateway.maxBufferedBytes;
    for (const topic of this.publishedTopics) {
      for (const ws of this.topicSockets.get(topic) ?? []) {
        if (!ws.getUserData().closed && ws.getBufferedAmount() > limit) ws.end(CloseCode.slowReader, 'slow reader: reconnect and resume');
      }
    }
    this.publishedTopics.clear();
  }

  /** Closes every connection with a code that tells clients to reconnect elsewhere. */
  private stopping = false;
  private inFlight = 0;

  /** Waits (bounded) for commands already being handled, so shutdown does not cut them off half-way. */
  async drain(timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }

  /** Shutdown: refuse new frames and close every connection with a code that says "reconnect elsewhere". */
  closeAll(): void {
    this.stopping = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.publishedCheck) clearTimeout(this.publishedCheck);
    this.disconnectAll();
  }

  /** Closes every connection (clients reconnect and resume) while the gateway keeps running. */
  disconnectAll(): void {
    for (const byConn of this.sockets.values()) {
      for (const ws of [...byConn.values()]) ws.end(CloseCode.serverShutdown, 'server shutting down');
    }
  }

  private onOpen(ws: Socket): void {
    const state = ws.getUserData();
    let byConn = this.sockets.get(state.userId);
    if (!byConn) this.sockets.set(state.userId, (byConn = new Map()));
    byConn.set(state.connectionId, ws);
    this.deps.presence.connected(state.userId);
    const msUntilExpiry = state.expiresAt - Date.now();
    state.expiryTimer = setTimeout(
      guarded(this.log, 'token expiry', () => {
        if (!state.closed) ws.end(CloseCode.tokenExpired, 'token expired');
      }),
      Math.max(0, Math.min(msUntilExpiry, 2 ** 31 - 1)),
    );
    const welcome: WelcomeFrame = {
      t: 'welcome',
      userId: state.userId,
      connectionId: state.connectionId,
      serverTime: Date.now(),
      heartbeatMs: this.deps.config.gateway.heartbeatSeconds * 1000,
      limits: { maxFrameBytes: this.deps.config.gateway.maxFrameBytes, maxTextCodePoints: MAX_TEXT_CODE_POINTS },
    };
    this.sendFrame(ws, JSON.stringify(welcome));
    // Resume: replay what the device missed, then live; `synced` closes it.
    const run = this.deps.sync.begin(this.syncConnection(ws));
    run.run(state.position).then(
      () => {
        state.syncing = false;
      },
      (err) => {
        // During a gateway shutdown in-flight resumes fail with the NATS connection; that is expected.
        if (this.stopping) this.log.debug('resume interrupted by shutdown', { userId: state.userId });
        else this.log.error('resume failed', { userId: state.userId, err });
        if (!state.closed) ws.end(CloseCode.serverShutdown, 'resume failed; reconnect');
      },
    );
  }

  /** The view of a socket the sync engine works with. */
  private syncConnection(ws: Socket): SyncConnection {
    const state = ws.getUserData();
    return {
      userId: state.userId,
      send: (frame) => this.sendFrame(ws, frame),
      sendAll: (frames) => this.sendFrames(ws, frames),
      isClosed: () => state.closed,
      hold: (kind, id) => {
        const topic = topicFor(kind, id);
        if (!state.closed && !state.topics.has(topic)) {
          this.deps.hub.acquire(kind, id);
          state.topics.add(topic);
        }
        return topic;
      },
      holds: (topic) => state.topics.has(topic),
      subscribe: (topic) => {
        if (state.closed) return;
        ws.subscribe(topic);
        let subscribers = this.topicSockets.get(topic);
        if (!subscribers) this.topicSockets.set(topic, (subscribers = new Set()));
        subscribers.add(ws);
      },
    };
  }

  private onClose(ws: Socket, code: number): void {
    const state = ws.getUserData();
    state.closed = true;
    if (state.expiryTimer) clearTimeout(state.expiryTimer);
    for (const topic of state.topics) {
      this.deps.hub.release(topic);
      this.forgetSubscriber(topic, ws);
    }
    state.topics.clear();
    const byConn = this.sockets.get(state.userId);
    byConn?.delete(state.connectionId);
    if (byConn && byConn.size === 0) this.sockets.delete(state.userId);
    this.deps.presence.disconnected(state.userId);
    this.log.debug('connection closed', { userId: state.userId, connectionId: state.connectionId, code });
  }

  private forgetSubscriber(topic: string, ws: Socket): void {
    const subscribers = this.topicSockets.get(topic);
    if (!subscribers?.delete(ws) || subscribers.size > 0) return;
    this.topicSockets.delete(topic);
    this.publishedTopics.delete(topic);
  }

  private onMessage(ws: Socket, data: ArrayBuffer, isBinary: boolean): void {
    const receivedAt = performance.now();
    this.deps.metrics?.frameIn();
    const state = ws.getUserData();
    const wait = state.frameBucket.take();
    if (wait > 0) {
      // One error frame per burst: answering every dropped frame would let a flooding client
      // make the server write as fast as it reads. The rest of the burst is dropped unread.
      if (state.rateLimitAnswered) return;
      state.rateLimitAnswered = true;
      const { requestId } = parseClientFrame(data, isBinary, this.deps.config.gateway.maxFrameBytes);
      this.sendError(
        ws,
        new AppError('rate_limited', 'too many frames on this connection; frames are dropped unanswered until retryAfterMs has passed', { retryAfterMs: wait }),
        requestId,
      );
      return;
    }
    state.rateLimitAnswered = false;
    const parsed = parseClientFrame(data, isBinary, this.deps.config.gateway.maxFrameBytes);
    if (parsed.error) {
      this.sendError(ws, parsed.error, parsed.requestId);
      this.countBadFrame(ws, state);
      return;
    }
    if (this.stopping) {
      this.sendError(ws, new AppError('unavailable', 'the gateway is shutting down; reconnect'), parsed.requestId);
      return;
    }
    this.inFlight++;
    this.dispatch(ws, state, parsed.frame!, receivedAt)
      .catch((err) => {
        const appErr = toAppError(err);
        if (appErr.code === 'internal') this.log.error('frame handling failed', { userId: state.userId, err });
        this.sendError(ws, appErr, parsed.requestId);
      })
      .finally(() => this.inFlight--);
  }

  private async dispatch(ws: Socket, state: ConnectionState, frame: ClientFrame, receivedAt: number): Promise<void> {
    if (frame.t === 'ping') {
      this.sendFrame(ws, JSON.stringify({ t: 'pong', ...(frame.id ? { id: frame.id } : {}), serverTime: Date.now() }));
      return;
    }
    if (frame.t === 'send') {
      const wait = this.sendLimiter.take(state.userId);
      if (wait > 0) throw new AppError('rate_limited', 'too many messages; slow down', { retryAfterMs: wait });
    }
    if (frame.t === 'typing') {
      // Typing is advisory: excess signals are dropped silently rather than answered.
      const last = state.lastTyping.get(frame.conversationId) ?? 0;
      if (Date.now() - last < TYPING_THROTTLE_MS) return;
      state.lastTyping.set(frame.conversationId, Date.now());
    }
    const { id, ...command } = frame;
    const result = await this.deps.commands.execute(state.userId, command as Command);
    if (!result) return;
    this.sendFrame(ws, JSON.stringify({ t: 'ack', id, result }));
    this.deps.metrics?.acked(frame.t, (performance.now() - receivedAt) / 1000);
  }

  /**
   * A membership change on a user's subject: a join catches the user's live
   * connections up on the conversation; a leave unsubscribes them.
   */
  private onUserEvent(userId: string, raw: string): Promise<void> | null {
    const byConn = this.sockets.get(userId);
    if (!byConn) return null;
    let event: { type?: string; data?: { conversationId?: string; cause?: { conversationSeq?: number } } };
    try {
      event = JSON.parse(raw);
    } catch {
      return null;
    }
    const conversationId = event.data?.conversationId;
    if (!conversationId) return null;
    const live = [...byConn.values()].filter((ws) => !ws.getUserData().syncing && !ws.getUserData().closed);
    if (event.type === 'membership.left') {
      for (const ws of live) this.unsubscribe(ws, topicFor('conv', conversationId));
      return null;
    }
    if (event.type !== 'membership.joined' || live.length === 0) return null;
    const after = (event.data?.cause?.conversationSeq ?? 1) - 1;
    // Not awaited: the join frame goes out now and the history follows; a device that drops in
    // between resumes with a rewind for this conversation (see contracts/position.ts).
    for (const ws of live) void this.deps.sync.catchUp(this.syncConnection(ws), conversationId, after);
    return null;
  }

  /**
   * Publishes a frame to a topic's sockets except those of `userId` (typing:
   * none of a user's devices shows "you are typing"). uWebSockets' publish
   * from a socket skips that socket; the user's other sockets on the topic
   * step out of it around that synchronous publish. False when the user has
   * no local socket on the topic: publish to everyone instead.
   */
  publishExceptUser(topic: string, frame: string, userId: string): boolean {
    const own = [...(this.sockets.get(userId)?.values() ?? [])].filter((ws) => !ws.getUserData().closed && ws.isSubscribed(topic));
    const [via, ...others] = own;
    if (!via) return false;
    for (const ws of others) ws.unsubscribe(topic);
    via.publish(topic, frame, false);
    for (const ws of others) ws.subscribe(topic);
    this.notePublished(topic);
    return true;
  }

  private unsubscribe(ws: Socket, topic: string): void {
    const state = ws.getUserData();
    if (state.closed || !state.topics.delete(topic)) return;
    ws.unsubscribe(topic);
    this.forgetSubscriber(topic, ws);
    this.deps.hub.release(topic);
  }

  private sendFrame(ws: Socket, frame: string): void {
    this.sendFrames(ws, [frame]);
  }

  private sendFrames(ws: Socket, frames: string[]): void {
    if (ws.getUserData().closed) return;
    this.deps.metrics?.frameOut(frames.length);
    // Corked: one syscall for the frames even when sent from an async continuation.
    ws.cork(() => {
      for (const frame of frames) ws.send(frame, false);
    });
    if (ws.getBufferedAmount() > this.deps.config.gateway.maxBufferedBytes) ws.end(CloseCode.slowReader, 'slow reader: reconnect and resume');
  }

  private sendError(ws: Socket, err: AppError, requestId: string | undefined): void {
    this.deps.metrics?.error(err.code);
    const body = err.toBody();
    // Every rate-limited answer says when to come back (the limiters always know; this is a floor).
    if (err.code === 'rate_limited' && body.retryAfterMs === undefined) body.retryAfterMs = 1000;
    const frame: ErrorFrame = { t: 'error', ...(requestId ? { id: requestId } : {}), ...body };
    this.sendFrame(ws, JSON.stringify(frame));
  }

  private countBadFrame(ws: Socket, state: ConnectionState): void {
    const now = Date.now();
    if (now - state.badFramesWindowStart > BAD_FRAME_WINDOW_MS) {
      state.badFramesWindowStart = now;
      state.badFrames = 0;
    }
    if (++state.badFrames > BAD_FRAME_LIMIT && !state.closed) {
      ws.end(CloseCode.policyViolation, 'too many invalid frames');
    }
  }
}
