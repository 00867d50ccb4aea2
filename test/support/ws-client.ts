import WebSocket from 'ws';
import { advancePosition } from '../../contracts/index.js';

export type Frame = Record<string, any> & { t: string };

/**
 * A real WebSocket client for tests: records every frame, and lets a test
 * wait for the next frame matching a predicate.
 */
export class TestClient {
  readonly frames: Frame[] = [];
  private readonly waiters: { pred: (f: Frame) => boolean; resolve: (f: Frame) => void; from: number }[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private requestCounter = 0;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data, isBinary) => {
      if (isBinary) return;
      const frame = JSON.parse(data.toString()) as Frame;
      this.frames.push(frame);
      const index = this.frames.length - 1;
      for (const w of [...this.waiters]) {
        if (index >= w.from && w.pred(frame)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(frame);
        }
      }
    });
    this.closed = new Promise((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  /** Connects and resolves once the server says the connection is live (`synced`, after any replay). */
  static async connect(url: string, token: string, position?: string | null): Promise<TestClient> {
    const socket = new WebSocket(`${url}?token=${encodeURIComponent(token)}${position ? `&position=${encodeURIComponent(position)}` : ''}`);
    const client = new TestClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    await client.next((f) => f.t === 'welcome');
    // Generous: CI machines are small and a resume may wait up to 2 s for the read model.
    await client.next((f) => f.t === 'synced', 20_000);
    return client;
  }

  /** The device position: every `synced` position and event `pos` folded in, as a client must. */
  get position(): string | null {
    let token: string | null = null;
    for (const f of this.frames) {
      if (f.t === 'synced') token = advancePosition(token, f.position);
      if (f.t === 'event') token = advancePosition(token, f.pos);
    }
    return token;
  }

  /** The first frame (already received or future) matching `pred`. */
  next(pred: (f: Frame) => boolean, timeoutMs = 5000, from = 0): Promise<Frame> {
    const seen = this.frames.slice(from).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = { pred, resolve: (f: Frame) => (clearTimeout(timer), resolve(f)), from };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames.slice(-5)).slice(0, 1500)}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Resolves with the live event frame for a message text in a conversation. */
  message(conversationId: string, text: string, timeoutMs = 5000): Promise<Frame> {
    return this.next(
      (f) => f.t === 'event' && f.event.type === 'message.sent' && f.event.data.conversationId === conversationId && f.event.data.text === text,
      timeoutMs,
    );
  }

  joined(conversationId: string, timeoutMs = 5000): Promise<Frame> {
    return this.next((f) => f.t === 'event' && f.event.type === 'membership.joined' && f.event.data.conversationId === conversationId, timeoutMs);
  }

  /** The next live event of `type` matching `pred` (already received or future). */
  event(type: string, pred: (data: Record<string, any>, frame: Frame) => boolean = () => true, timeoutMs = 5000): Promise<Frame> {
    return this.next((f) => f.t === 'event' && f.event.type === type && pred(f.event.data, f), timeoutMs);
  }

  /** Sends a command frame and expects an ack; throws with the error frame otherwise. */
  async ok(frame: Record<string, unknown>): Promise<Record<string, any>> {
    const reply = await this.request(frame);
    if (reply.t !== 'ack') throw new Error(`expected an ack for ${JSON.stringify(frame).slice(0, 200)}, got ${JSON.stringify(reply).slice(0, 400)}`);
    return reply.result;
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.socket.send(data, { binary });
  }

  /** Sends a request frame (an id is added) and resolves with its ack or error frame. */
  request(frame: Record<string, unknown>, timeoutMs = 5000): Promise<Frame> {
    const id = (frame.id as string | undefined) ?? `q${++this.requestCounter}`;
    const from = this.frames.length;
    this.sendRaw(JSON.stringify({ ...frame, id }));
    return this.next((f) => (f.t === 'ack' || f.t === 'error' || f.t === 'pong') && f.id === id, timeoutMs, from);
  }

  send(conversationId: string, text: string, clientMsgId = `c${Date.now()}${Math.random().toString(36).slice(2)}`): Promise<Frame> {
    return this.request({ t: 'send', conversationId, clientMsgId, text });
  }

  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    this.socket.close();
    await this.closed;
  }
}

export async function api(base: string, method: 'GET' | 'POST', path: string, token?: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(base + path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // leave as text
  }
  return { status: res.status, body: parsed };
}
