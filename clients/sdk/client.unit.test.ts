import { describe, expect, it } from 'vitest';
import { decodePosition, encodePosition, encodeShardPosition } from '../../contracts/position-codec.js';
import { ParleyClient, type WebSocketLike } from './client.js';
import { MemoryStorage } from './storage.js';

/** A socket the test drives by hand: frames in through `onmessage`, closes recorded. */
class FakeSocket implements WebSocketLike {
  static last: FakeSocket | null = null;
  readyState = 1;
  closed: { code?: number; reason?: string } | null = null;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor() {
    FakeSocket.last = this;
  }
  send(): void {}
  close(code?: number, reason?: string): void {
    this.closed = { code, reason };
  }
  frame(f: object): void {
    this.onmessage?.({ data: JSON.stringify(f) });
  }
}

const message = (conversationId: string, text: string) => ({
  type: 'message.sent',
  v: 1,
  at: 1,
  actor: 'amy',
  data: { conversationId, messageId: '1', clientMsgId: text, text },
});
const eventFrame = (shard: number, id: string, seq: number, prevSeq: number) => ({
  t: 'event',
  entity: { kind: 'conv', id },
  seq,
  prevSeq,
  pos: encodeShardPosition({ shard, epoch: `e${shard}`, seq }),
  event: message(id, `m${seq}`),
});

/** A client on FakeSocket whose own reconnect waits a minute: reconnects happen when the test says. */
const testClient = () =>
  new ParleyClient({ url: 'ws://x', token: 't', storage: new MemoryStorage(), WebSocket: FakeSocket, backoff: { baseMs: 60_000, maxMs: 60_000 } });

describe('the SDK with several shards', () => {
  it('rewinds the shard of the frame where it saw a gap, and leaves the other shards where they are', async () => {
    const client = testClient();
    const connected = client.connect();
    await new Promise((r) => setTimeout(r, 0));
    const socket = FakeSocket.last!;
    socket.onopen?.({});
    socket.frame({
      t: 'synced',
      status: 'complete',
      replayed: 0,
      position: encodePosition([
        { shard: 0, epoch: 'e0', seq: 100 },
        { shard: 1, epoch: 'e1', seq: 50 },
      ]),
    });
    await connected;
    socket.frame(eventFrame(1, 'g_one', 52, 40));
    socket.frame(eventFrame(0, 'g_zero', 103, 90));
    // g_one's event after 52 says its predecessor was 55: 53..55 went missing on shard 1.
    socket.frame(eventFrame(1, 'g_one', 57, 55));
    expect(socket.closed?.code).toBe(4000);
    expect(decodePosition(client.position!)).toEqual([
      { shard: 0, epoch: 'e0', seq: 103 },
      { shard: 1, epoch: 'e1', seq: 52 },
    ]);
    client.close();
  });

  it('after a resync forgets what it saw of the listed conversations: their next live event is delivered, not taken for a gap', async () => {
    const client = testClient();
    const seen: number[] = [];
    client.on('event', (f) => seen.push(f.seq));
    const connected = client.connect();
    await new Promise((r) => setTimeout(r, 0));
    let socket = FakeSocket.last!;
    socket.onopen?.({});
    const position = (seq0: number, seq1: number) =>
      encodePosition([
        { shard: 0, epoch: 'e0', seq: seq0 },
        { shard: 1, epoch: 'e1', seq: seq1 },
      ]);
    socket.frame({ t: 'synced', status: 'complete', replayed: 0, position: position(10, 10) });
    await connected;
    socket.frame(eventFrame(1, 'g_one', 12, 0));
    socket.frame(eventFrame(0, 'g_zero', 14, 0));
    // Away; too much happened in g_one: the gateway answers with a resync listing it (the app refetches it over HTTP).
    socket.onclose?.({ code: 1006, reason: '' });
    client.reconnectNow();
    await new Promise((r) => setTimeout(r, 0));
    expect(FakeSocket.last).not.toBe(socket);
    socket = FakeSocket.last!;
    socket.onopen?.({});
    socket.frame({
      t: 'synced',
      status: 'resync_needed',
      replayed: 0,
      position: position(14, 90),
      resync: { reason: 'too_far_behind', conversations: ['g_one'] },
    });
    // g_one goes on live after the skipped range; g_zero, not listed, still has its gap check.
    socket.frame(eventFrame(1, 'g_one', 95, 90));
    expect(socket.closed).toBeNull();
    expect(seen).toEqual([12, 14, 95]);
    socket.frame(eventFrame(0, 'g_zero', 20, 17));
    expect(socket.closed?.code).toBe(4000);
    client.close();
  });
});
