import { io, type Socket } from 'socket.io-client';
import type { BenchConn, ConnOptions, Ready, SendOutcome } from './conn.js';
import { parsed, parseText } from './payload.js';

/**
 * A Socket.IO client of the benchmark peer. Resume is Socket.IO's own
 * connection-state recovery: the same Socket reconnects and presents the
 * session id and last offset it kept, and the server replays missed packets.
 */
export class PeerConn implements BenchConn {
  private readonly socket: Socket;
  private ready = false;
  private dropping = false;
  unexpectedCloses = 0;

  constructor(private readonly o: ConnOptions) {
    this.socket = io(o.url, {
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
      autoConnect: false,
      auth: { token: o.token },
      timeout: o.timeoutMs,
      // Passed through to the `ws` transport in Node (not in socket.io-client's types).
      localAddress: o.localAddress(),
    } as unknown as Parameters<typeof io>[1]);
    this.socket.on('message', (m: { text: string }) => {
      if (parseText(m.text)) this.o.onMessage(parsed.sender, parsed.counter, parsed.sentAt);
    });
    this.socket.on('disconnect', () => {
      if (this.ready && !this.dropping) this.unexpectedCloses++;
      this.ready = false;
    });
  }

  get isOpen(): boolean {
    return this.ready && this.socket.connected;
  }

  connect(_resume: boolean): Promise<Ready> {
    this.dropping = false;
    return new Promise<Ready>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error('timeout waiting for connect')), this.o.timeoutMs);
      const onConnect = () => {
        this.ready = true;
        done(null);
      };
      const onError = (err: Error) => done(err);
      const done = (err: Error | null) => {
        clearTimeout(timer);
        this.socket.off('connect', onConnect);
        this.socket.off('connect_error', onError);
        if (!err) return resolve({ status: this.socket.recovered ? 'recovered' : 'fresh' });
        this.socket.io.engine?.close();
        reject(err);
      };
      this.socket.once('connect', onConnect);
      this.socket.once('connect_error', onError);
      this.socket.connect();
    });
  }

  send(conversationId: string, clientMsgId: string, text: string): Promise<SendOutcome> {
    if (!this.socket.connected) return Promise.resolve('closed');
    return new Promise((resolve) => {
      this.socket
        .timeout(this.o.timeoutMs)
        .emit('send', { conversationId, clientMsgId, text }, (err: Error | null, res: { error?: string; duplicate?: boolean }) => {
          if (err) resolve('timeout');
          else if (res.error) resolve(res.error);
          else resolve(res.duplicate ? 'duplicate' : 'ok');
        });
    });
  }

  /** Closes the transport only: the server sees "transport close" and keeps the session for recovery. */
  async drop(): Promise<void> {
    if (!this.socket.connected) return;
    this.dropping = true;
    this.ready = false;
    const gone = new Promise((r) => this.socket.once('disconnect', r));
    this.socket.io.engine.close();
    await gone;
  }

  close(): void {
    this.ready = false;
    this.dropping = true;
    this.socket.disconnect();
  }
}
