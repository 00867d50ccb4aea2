import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { advancePosition, decodePosition, rewindPosition } from '../../contracts/index.js';
import type { Ledger } from './ledger.js';

type Frame = Record<string, any> & { t: string };

const SEND_TIMEOUT_MS = 8000;
const SYNC_TIMEOUT_MS = 30_000;
const MAX_BACKOFF_MS = 2000;

/**
 * One device of a user, pinned to one gateway, speaking the protocol
 * (docs/protocol.md) over a real WebSocket: it keeps its position the way
 * the SDK does (folding every event `pos` and `synced` position), resumes
 * from it on every reconnect, and retries a send until it is acked, always
 * with the same clientMsgId, through as many reconnects as it takes.
 * Every conversation event it receives goes to the ledger.
 */
export class Device {
  position: string | null = null;
  /** Status of the last `synced` frame. */
  lastSync: { status: string; reason?: string; at: number } | null = null;
  resumes = 0;
  sendRetries = 0;
  /** Live events whose prevSeq showed a hole the gateway had not filled: the device resumed from before it. */
  liveGaps = 0;
  /**
   * Set from a live gap until the next connection: the socket is closing and what it still sends is ignored (it
   * would move the position past the hole).
   */
  private gapped = false;
  /** Set from a live gap until the resume after it is synced: replayed events the device already holds are expected. */
  private rewound = false;
  refused: string[] = [];
  private socket: WebSocket | null = null;
  private connected: Promise<void> | null = null;
  private synced = false;
  private requestCounter = 0;
  private readonly pending = new Map<string, (f: Frame | null) => void>();
  private readonly lastSeqByConv = new Map<string, number>();
  private closedByUs = false;
  private stopped = false;

  constructor(
    readonly name: string,
    readonly user: string,
    readonly gateway: string,
    private readonly url: string,
    private readonly token: string,
    private readonly ledger: Ledger,
    /** Where the device says what went wrong (the harness log), for reading a run afterwards. */
    private readonly note: (msg: string, fields: Record<string, unknown>) => void = () => undefined,
  ) {}

  /** Connects (or waits for the connection in progress) and resolves once synced. */
  ensureConnected(): Promise<void> {
    // One connection at a time: two would deliver every event twice.
    if (this.socket?.readyState === WebSocket.OPEN && this.synced && !this.connected) return Promise.resolve();
    return (this.connected ??= this.connectLoop().finally(() => (this.connected = null)));
  }

  /** Drops the connection (as a phone going through a tunnel); the next use resumes. */
  bounce(): void {
    if (!this.socket) return;
    this.closedByUs = true;
    this.socket.terminate();
  }

  /** Drops the connection and resumes once more from the stored position; the `synced` status (or why there was none). */
  async finalResume(timeoutMs: number): Promise<string> {
    await this.connected?.catch(() => undefined);
    const old = this.socket;
    if (old) {
      const closed = new Promise((r) => old.once('close', r));
      old.terminate();
      await closed;
    }
    this.lastSync = null;
    const done = this.ensureConnected().then(
      () => this.lastSync?.status ?? 'no synced frame',
      (err: Error) => `no synced frame (${err.message})`,
    );
    return Promise.race([done, sleep(timeoutMs).then(() => 'no synced frame in time')]);
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.socket?.terminate();
    this.socket = null;
  }

  /** Sends until acked; resolves false only when the server refuses for good (or the device stopped). */
  async send(conversationId: string, clientMsgId: string, text: string): Promise<boolean> {
    for (let attempt = 0; !this.stopped; attempt++) {
      if (attempt > 0) this.sendRetries++;
      try {
        await this.ensureConnected();
      } catch {
        await sleep(backoff(attempt));
        continue;
      }
      const reply = await this.request({ t: 'send', conversationId, clientMsgId, text }, SEND_TIMEOUT_MS);
      if (reply?.t === 'ack') {
        const r = reply.result;
        this.ledger.ack({ conversationId, clientMsgId, sender: this.user, messageId: r.messageId, seq: r.seq, at: Date.now(), gateway: this.gateway });
        return true;
      }
      if (reply?.t === 'error' && reply.retryable === false) {
        this.refused.push(`${clientMsgId}: ${reply.code} ${reply.message}`);
        return false;
      }
      this.note('send not acked', {
        device: this.name,
        clientMsgId,
        reply: reply ? `${reply.code}: ${reply.message}` : 'no answer (timeout or connection lost)',
      });
      // Timeout, a retryable error or a dropped connection: same clientMsgId again, after a pause.
      await sleep(reply?.retryAfterMs ?? backoff(attempt));
    }
    return false;
  }

  private request(frame: Record<string, unknown>, timeoutMs: number): Promise<Frame | null> {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return Promise.resolve(null);
    const id = `${this.name}-${++this.requestCounter}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(null), timeoutMs);
      const done = (f: Frame | null) => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(f);
      };
      this.pending.set(id, done);
      socket.send(JSON.stringify({ ...frame, id }), (err) => err && done(null));
    });
  }

  private async connectLoop(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (this.stopped) throw new Error('device stopped');
      try {
        await this.connectOnce();
        return;
      } catch (err) {
        this.note('connect failed', { device: this.name, attempt, err: (err as Error).message });
        await sleep(backoff(attempt));
      }
    }
  }

  private connectOnce(): Promise<void> {
    const position = this.position;
    const socket = new WebSocket(`${this.url}?token=${encodeURIComponent(this.token)}${position ? `&position=${encodeURIComponent(position)}` : ''}`, {
      handshakeTimeout: 5000,
    });
    this.socket = socket;
    this.synced = false;
    this.closedByUs = false;
    this.gapped = false;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error('no synced in time')), SYNC_TIMEOUT_MS);
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.terminate();
        reject(err);
      };
      socket.on('message', (data, isBinary) => {
        if (isBinary || this.socket !== socket) return;
        const frame = JSON.parse(data.toString()) as Frame;
        this.onFrame(frame);
        if (frame.t === 'synced' && !settled) {
          settled = true;
          clearTimeout(timer);
          this.resumes++;
          resolve();
        }
      });
      socket.on('error', (err) => fail(err));
      socket.on('unexpected-response', (_req, res) => fail(new Error(`upgrade refused: ${res.statusCode}`)));
      socket.on('close', () => {
        const wasLive = settled && this.synced;
        fail(new Error('closed before synced'));
        if (this.socket !== socket) return;
        this.socket = null;
        for (const done of [...this.pending.values()]) done(null);
        // A device comes back by itself (after a pause, like a phone regaining signal) and resumes.
        if (wasLive && !this.stopped) setTimeout(() => void this.ensureConnected().catch(() => undefined), this.closedByUs ? 300 : backoff(1));
      });
    });
  }

  private onFrame(f: Frame): void {
    if (this.gapped) return;
    if (f.t === 'event') {
      const replayed = !this.synced;
      if (f.entity?.kind === 'conv') {
        const conv = f.entity.id as string;
        const last = this.lastSeqByConv.get(conv);
        if (!replayed && last !== undefined && f.prevSeq > last) {
          // The client's rule (docs/protocol.md, "Gaps during live delivery"): the gateway could not fill the hole,
          // so resume this event's shard from before it, as the SDK does.
          this.liveGaps++;
          this.gapped = this.rewound = true;
          const shard = decodePosition(f.pos)?.[0]?.shard ?? 0;
          if (this.position) this.position = rewindPosition(this.position, shard, last);
          this.closedByUs = true;
          this.socket?.close(4000, 'gap detected; resuming');
          return;
        }
        // Rewound past events of other conversations of the shard: their replay is expected and ignored, as the SDK
        // ignores an event at or below the last one it holds.
        if (replayed && this.rewound && last !== undefined && f.seq <= last) return;
        if (last === undefined || f.seq > last) this.lastSeqByConv.set(conv, f.seq);
        this.ledger.delivery(this.name, conv, f.seq, replayed);
      }
      this.position = advancePosition(this.position, f.pos);
    } else if (f.t === 'synced') {
      this.synced = true;
      this.rewound = false;
      this.position = advancePosition(this.position, f.position);
      this.lastSync = { status: f.status, ...(f.resync?.reason ? { reason: f.resync.reason } : {}), at: Date.now() };
    } else if ((f.t === 'ack' || f.t === 'error') && typeof f.id === 'string') {
      this.pending.get(f.id)?.(f);
    }
  }
}

function backoff(attempt: number): number {
  // Full jitter, as the SDK does: a fleet of devices must not reconnect in lockstep.
  return Math.random() * Math.min(MAX_BACKOFF_MS, 100 * 2 ** Math.min(attempt, 5));
}
