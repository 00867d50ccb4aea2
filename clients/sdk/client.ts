import type { Command, CommandResult, EventFrame, ReceiptFrame, SendResult, ServerFrame, SyncedFrame, TypingFrame } from '../../contracts/index.js';
// Runtime imports from the zod-free modules, not the index: a browser bundle then carries the
// position and close-code helpers without a schema library.
import { shouldReconnect } from '../../contracts/close-codes.js';
import { advancePosition, decodePosition, positionSeq, rewindPosition, rewindsOf, withRewind } from '../../contracts/position-codec.js';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { Emitter } from './emitter.js';
import { ParleyError } from './errors.js';
import { parseServerFrame } from './frames.js';
import { SendQueue } from './send-queue.js';
import { MemoryStorage, type PositionStorage } from './storage.js';

/** The subset of the WebSocket API the SDK uses (browsers' WebSocket and the `ws` package both fit). */
export interface WebSocketLike {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
export type WebSocketFactory = new (url: string, protocols?: string[]) => WebSocketLike;

export type ConnectionState = 'connecting' | 'syncing' | 'live' | 'offline' | 'closed';

export interface ParleyClientOptions {
  /** e.g. ws://localhost:8080/v1/ws */
  url: string;
  /** A token, or a function returning a fresh one (called before every connection). */
  token: string | (() => string | Promise<string>);
  storage?: PositionStorage;
  /** Defaults to globalThis.WebSocket (browsers, Node 22+); pass the `ws` package on Node 20. */
  WebSocket?: WebSocketFactory;
  backoff?: BackoffOptions;
  /** How long a command waits for its answer before failing with `timeout` (default 10 s). */
  requestTimeoutMs?: number;
  /**
   * How the token reaches the server: `protocol` (default) as the WebSocket subprotocol
   * `parley.bearer.<token>`, which stays out of URLs and so out of access logs; `query`
   * as `?token=` (for servers older than the subprotocol).
   */
  tokenTransport?: 'protocol' | 'query';
}

type Events = {
  event: (frame: EventFrame) => void;
  synced: (frame: SyncedFrame) => void;
  typing: (frame: TypingFrame) => void;
  receipt: (frame: ReceiptFrame) => void;
  state: (state: ConnectionState) => void;
  error: (error: Error) => void;
};

interface Pending {
  resolve(result: CommandResult): void;
  reject(err: Error): void;
  timer: ReturnType<typeof setTimeout>;
  clientMsgId?: string;
}

const OPEN = 1;

/**
 * A Parley connection that stays connected: reconnects with exponential
 * backoff and jitter, resumes from its stored position (so every event is
 * delivered once, in order), re-sends unacknowledged messages under their
 * original client ids, and detects gaps from each entity's previous
 * sequence.
 */
export class ParleyClient extends Emitter<Events> {
  private socket: WebSocketLike | null = null;
  private positionToken: string | null = null;
  private readonly lastSeq = new Map<string, number>();
  private readonly pending = new Map<string, Pending>();
  private readonly sends = new SendQueue();
  private requestCounter = 0;
  private attempt = 0;
  private closedByUser = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private sendTimer: ReturnType<typeof setTimeout> | null = null;
  private firstSync: { resolve(): void; reject(e: Error): void } | null = null;
  state: ConnectionState = 'offline';

  constructor(private readonly options: ParleyClientOptions) {
    super();
  }

  get position(): string | null {
    return this.positionToken;
  }

  /** Connects (and keeps reconnecting); resolves at the first `synced`. */
  async connect(): Promise<void> {
    this.closedByUser = false;
    this.positionToken = (await (this.options.storage ?? (this.options.storage = new MemoryStorage())).load()) ?? null;
    const synced = new Promise<void>((resolve, reject) => (this.firstSync = { resolve, reject }));
    void this.open();
    return synced;
  }

  close(): void {
    this.closedByUser = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.sendTimer) clearTimeout(this.sendTimer);
    this.socket?.close(1000, 'client closed');
    this.setState('closed');
    this.sends.rejectAll(new ParleyError({ code: 'unavailable', message: 'client closed', retryable: false }));
  }

  /** Sends a message; resolves with its stored position once acknowledged, however many reconnects that takes. */
  send(conversationId: string, text: string, extra: { replyTo?: string; attachments?: string[]; clientMsgId?: string } = {}): Promise<SendResult> {
    const clientMsgId = extra.clientMsgId ?? randomId();
    return new Promise((resolve, reject) => {
      this.sends.add({
        frame: {
          t: 'send',
          conversationId,
          clientMsgId,
          text,
          ...(extra.replyTo ? { replyTo: extra.replyTo } : {}),
          ...(extra.attachments ? { attachments: extra.attachments } : {}),
        },
        resolve,
        reject,
      });
      this.flushSends();
    });
  }

  /**
   * Any other command. Not queued across reconnects (creating a group twice
   * is not harmless): it fails with `unavailable` if the connection drops first.
   */
  command<C extends Exclude<Command, { t: 'send' | 'typing' }>>(command: C): Promise<CommandResult> {
    if (this.state !== 'live') return Promise.reject(new ParleyError({ code: 'unavailable', message: 'not connected', retryable: true }));
    return this.request(command);
  }

  /**
   * Skips the rest of the backoff wait (e.g. when the browser reports it is
   * online again): reconnects now if the client is waiting to. No-op otherwise.
   */
  reconnectNow(): void {
    if (this.closedByUser || this.state !== 'offline' || !this.reconnectTimer) return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.attempt = 0;
    void this.open();
  }

  typing(conversationId: string): void {
    if (this.state === 'live') this.write({ t: 'typing', id: this.nextId(), conversationId });
  }

  private async open(): Promise<void> {
    if (this.closedByUser) return;
    this.setState('connecting');
    const Impl = this.options.WebSocket ?? (globalThis as unknown as { WebSocket?: WebSocketFactory }).WebSocket;
    if (!Impl) throw new Error('no WebSocket implementation: pass options.WebSocket');
    let token: string;
    try {
      token = typeof this.options.token === 'function' ? await this.options.token() : this.options.token;
    } catch (err) {
      this.emit('error', err as Error);
      return this.scheduleReconnect();
    }
    const viaQuery = this.options.tokenTransport === 'query';
    const params = [
      ...(viaQuery ? [`token=${encodeURIComponent(token)}`] : []),
      ...(this.positionToken ? [`position=${encodeURIComponent(this.positionToken)}`] : []),
    ];
    const url = params.length ? `${this.options.url}?${params.join('&')}` : this.options.url;
    const socket = viaQuery ? new Impl(url) : new Impl(url, ['parley.v1', `parley.bearer.${token}`]);
    this.socket = socket;
    socket.onopen = () => this.setState('syncing');
    socket.onmessage = (ev) => this.onFrame(String(ev.data));
    socket.onerror = () => undefined; // onclose follows and decides
    socket.onclose = (ev) => this.onClose(socket, ev.code, ev.reason);
  }

  private onClose(socket: WebSocketLike, code: number, reason: string): void {
    if (this.socket !== socket) return;
    this.socket = null;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      if (!p.clientMsgId) p.reject(new ParleyError({ code: 'unavailable', message: 'connection lost before the answer', retryable: true }));
      this.pending.delete(id);
    }
    this.sends.requeueAll();
    if (this.closedByUser) return;
    if (!shouldReconnect(code)) {
      this.setState('closed');
      const err = new ParleyError({ code: 'unauthenticated', message: `server closed the connection: ${code} ${reason}`, retryable: false });
      this.emit('error', err);
      this.firstSync?.reject(err);
      this.sends.rejectAll(err);
      return;
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    this.setState('offline');
    const delay = backoffDelay(this.attempt++, this.options.backoff);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.open();
    }, delay);
  }

  private onFrame(raw: string): void {
    const checked = parseServerFrame(raw);
    if ('invalid' in checked) {
      // Dropped, not acted on: a missing event is then caught by the prevSeq gap check and refetched.
      this.emit('error', new ParleyError({ code: 'invalid_frame', message: `dropped a server frame: ${checked.invalid}`, retryable: false }));
      return;
    }
    if ('unknownType' in checked) return;
    const frame: ServerFrame = checked.frame;
    switch (frame.t) {
      case 'event':
        return this.onEvent(frame);
      case 'synced':
        return this.onSynced(frame);
      case 'ack':
      case 'error': {
        const p = frame.id ? this.pending.get(frame.id) : undefined;
        if (!p) return;
        this.pending.delete(frame.id!);
        clearTimeout(p.timer);
        if (frame.t === 'ack') p.resolve(frame.result);
        else p.reject(new ParleyError(frame));
        return;
      }
      case 'typing':
        return this.emit('typing', frame);
      case 'receipt':
        return this.emit('receipt', frame);
      default:
        return;
    }
  }

  private onEvent(frame: EventFrame): void {
    const key = `${frame.entity.kind}/${frame.entity.id}`;
    const last = this.lastSeq.get(key);
    if (last !== undefined && frame.seq <= last) return; // already delivered
    // Live frames only: a resume's continuity is vouched for by its `synced` frame, and a replay leaves out what the
    // device may not see (events while it was not a member, events an operator tombstoned).
    if (this.state === 'live' && last !== undefined && frame.prevSeq > last) {
      // Something between `last` and this event is missing: resume from before it, in the frame's shard
      // (an entity's sequences, `last` included, are all of the one shard its `pos` names).
      const shard = decodePosition(frame.pos)?.[0]?.shard ?? 0;
      this.resumeFrom(shard, Math.min(last, positionSeq(this.positionToken, shard)));
      return;
    }
    this.lastSeq.set(key, frame.seq);
    this.emit('event', frame);
    let token = advancePosition(this.positionToken, frame.pos);
    // Until a joined conversation's history has arrived, keep a rewind for it in the position, so
    // a disconnect in between cannot skip that history (contracts/position.ts).
    const ev = frame.event;
    // Not a member from here on: the conversation's events until a rejoin are not this device's to see.
    if (ev.type === 'membership.left') this.lastSeq.delete(`conv/${ev.data.conversationId}`);
    if (ev.type === 'membership.joined' && (this.lastSeq.get(`conv/${ev.data.conversationId}`) ?? 0) < ev.data.cause.conversationSeq) {
      token = withRewind(token, ev.data.conversationId, ev.data.cause.conversationSeq - 1);
    } else if (frame.entity.kind === 'conv' && rewindsOf(token)[frame.entity.id] !== undefined && frame.seq > rewindsOf(token)[frame.entity.id]!) {
      token = withRewind(token, frame.entity.id, null);
    }
    this.savePosition(token);
  }

  private onSynced(frame: SyncedFrame): void {
    if (frame.status === 'resync_needed') {
      // Skipped events (refetched over HTTP) leave these last sequences behind: kept, the next live event would look
      // like a gap and rewind the device into the same resync, dropping that event.
      const ids = frame.resync?.conversations;
      for (const key of [...this.lastSeq.keys()]) if (!ids || key.startsWith('user/') || ids.includes(key.slice('conv/'.length))) this.lastSeq.delete(key);
    }
    this.savePosition(advancePosition(this.positionToken, frame.position));
    this.attempt = 0;
    this.setState('live');
    this.emit('synced', frame);
    this.firstSync?.resolve();
    this.firstSync = null;
    this.flushSends();
  }

  private flushSends(): void {
    if (this.state !== 'live') return;
    for (const item of this.sends.takeReady(Date.now())) {
      this.request(item.frame, item.frame.clientMsgId).then(
        (result) => this.sends.settle(item.frame.clientMsgId, result as SendResult),
        (err: Error) => {
          this.sends.fail(
            item.frame.clientMsgId,
            err instanceof ParleyError ? err : new ParleyError({ code: 'timeout', message: err.message, retryable: true }),
          );
          this.scheduleSendFlush();
        },
      );
    }
  }

  private scheduleSendFlush(): void {
    const due = this.sends.nextDue();
    if (due === null || this.sendTimer) return;
    this.sendTimer = setTimeout(
      () => {
        this.sendTimer = null;
        this.flushSends();
        this.scheduleSendFlush();
      },
      Math.max(0, due - Date.now()),
    );
  }

  private request(frame: Record<string, unknown>, clientMsgId?: string): Promise<CommandResult> {
    const id = this.nextId();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ParleyError({ code: 'timeout', message: 'no answer in time', retryable: true }));
      }, this.options.requestTimeoutMs ?? 10_000);
      this.pending.set(id, { resolve, reject, timer, ...(clientMsgId ? { clientMsgId } : {}) });
      this.write({ ...frame, id });
    });
  }

  private write(frame: Record<string, unknown>): void {
    if (this.socket && this.socket.readyState === OPEN) this.socket.send(JSON.stringify(frame));
  }

  /** Drops the connection and reconnects from `seq` of `shard` (after a detected gap); other shards keep their place. */
  private resumeFrom(shard: number, seq: number): void {
    if (this.positionToken) this.positionToken = rewindPosition(this.positionToken, shard, seq);
    this.socket?.close(4000, 'gap detected; resuming');
  }

  private savePosition(token: string): void {
    this.positionToken = token;
    void this.options.storage?.save(token);
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', state);
  }

  private nextId(): string {
    return `r${(++this.requestCounter).toString(36)}`;
  }
}

function randomId(): string {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
