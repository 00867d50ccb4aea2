import WebSocket from 'ws';
import { decodePosition } from '../../../contracts/index.js';
import type { BenchConn, ConnOptions, Ready, SendOutcome } from './conn.js';
import { parsed, parseFrameBytes } from './payload.js';

const ACK_PREFIX = Buffer.from('{"t":"ack","id":"');
const SEQ = Buffer.from('"seq":');
const POS = Buffer.from('"pos":"');
const E = 0x65;

/**
 * A raw Parley protocol client tuned for load: frames are classified by
 * their first bytes and bench messages are read without JSON.parse, so one
 * load process can take tens of thousands of deliveries per second.
 */
export class ParleyConn implements BenchConn {
  private ws: WebSocket | null = null;
  private nextId = 1;
  private readonly acks = new Map<number, (o: SendOutcome) => void>();
  /** The device position (folded from `synced` and every event), for resume. */
  position: string | null = null;
  private lastSeq = 0;
  private ready = false;
  unexpectedCloses = 0;

  constructor(private readonly o: ConnOptions) {}

  get isOpen(): boolean {
    return this.ready && this.ws?.readyState === WebSocket.OPEN;
  }

  connect(resume: boolean): Promise<Ready> {
    const q = `token=${encodeURIComponent(this.o.token)}${resume && this.position ? `&position=${encodeURIComponent(this.position)}` : ''}`;
    const ws = new WebSocket(`${this.o.url}?${q}`, {
      perMessageDeflate: false,
      skipUTF8Validation: true,
      localAddress: this.o.localAddress(),
      handshakeTimeout: this.o.timeoutMs,
    });
    this.ws = ws;
    this.ready = false;
    const startedAt = performance.now();
    // How far the attempt got, for the error message: a connection that fails is explained, not just counted.
    let stage = 'tcp';
    ws.once('open', () => (stage = 'open'));
    ws.once('upgrade', (res) => {
      stage = 'upgraded';
      const sock = (res as unknown as { socket: import('node:net').Socket }).socket;
      sock.on('error', (e: NodeJS.ErrnoException) => (stage += ` sockerr ${e.code}`));
      sock.on('end', () => (stage += ' fin'));
    });
    return new Promise<Ready>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error('timeout waiting for synced')), this.o.timeoutMs);
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ws.terminate();
        reject(err);
      };
      ws.on('error', (err) => fail(err));
      ws.on('unexpected-response', (_req, res) => fail(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.on('close', (code, reason) => {
        if (!settled) fail(new Error(`closed before synced: ${code} ${String(reason)} after ${Math.round(performance.now() - startedAt)} ms at ${stage}`));
        else if (this.ready && this.ws === ws) this.unexpectedCloses++;
        this.ready = false;
        for (const done of this.acks.values()) done('closed');
        this.acks.clear();
      });
      ws.on('message', (data: Buffer) => {
        if (data[6] === E && data[7] === 0x76) return this.onEvent(data);
        if (data[6] === 0x61 && data.subarray(0, ACK_PREFIX.length).equals(ACK_PREFIX)) return this.onAck(data);
        const frame = JSON.parse(data.toString()) as { t: string; id?: string; code?: string; status?: string; replayed?: number; position?: string };
        if (!this.ready) stage += ` ${frame.t}`;
        if (frame.t === 'synced') {
          this.position = frame.position!;
          this.lastSeq = decodePosition(frame.position!)?.[0]?.seq ?? 0;
          this.ready = true;
          settled = true;
          clearTimeout(timer);
          resolve({ status: frame.status!, replayed: frame.replayed! });
        } else if (frame.t === 'error' && frame.id) {
          const done = this.acks.get(Number(frame.id));
          this.acks.delete(Number(frame.id));
          done?.(frame.code ?? 'error');
        }
      });
    });
  }

  private onEvent(data: Buffer): void {
    if (parseFrameBytes(data)) this.o.onMessage(parsed.sender, parsed.counter, parsed.sentAt);
    if (!this.o.trackPosition) return;
    const s = data.indexOf(SEQ);
    let seq = 0;
    for (let i = s + SEQ.length; i < data.length && data[i]! >= 0x30 && data[i]! <= 0x39; i++) seq = seq * 10 + (data[i]! - 0x30);
    if (seq <= this.lastSeq) return;
    const p = data.indexOf(POS);
    if (p < 0) return;
    this.lastSeq = seq;
    this.position = data.toString('latin1', p + POS.length, data.indexOf(0x22, p + POS.length));
  }

  private onAck(data: Buffer): void {
    let id = 0;
    for (let i = ACK_PREFIX.length; i < data.length && data[i] !== 0x22; i++) id = id * 10 + (data[i]! - 0x30);
    const done = this.acks.get(id);
    if (!done) return;
    this.acks.delete(id);
    done(data.includes('"duplicate":true') ? 'duplicate' : 'ok');
  }

  send(conversationId: string, clientMsgId: string, text: string): Promise<SendOutcome> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.resolve('closed');
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.acks.set(id, resolve);
      ws.send(`{"t":"send","id":"${id}","conversationId":"${conversationId}","clientMsgId":"${clientMsgId}","text":${JSON.stringify(text)}}`);
    });
  }

  async drop(): Promise<void> {
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    this.ready = false;
    const closed = new Promise((r) => ws.once('close', r));
    ws.close();
    await closed;
  }

  close(): void {
    this.ready = false;
    this.ws?.terminate();
  }
}
