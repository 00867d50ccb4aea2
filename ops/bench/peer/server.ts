/**
 * The benchmark peer (only a peer, not part of Parley): what a team would
 * otherwise build, a Socket.IO v4 server with connection-state recovery and
 * messages persisted to Postgres. Same job as Parley where it applies:
 * authenticate with the same JWTs, join each member to their conversations'
 * rooms, store every message (idempotently) before acknowledging it, fan it
 * out to every member socket, sender's included.
 */
import http from 'node:http';
import { jwtVerify } from 'jose';
import { Server } from 'socket.io';
import { serve } from '../lib/ipc.js';
import { BENCH_JWT_ISSUER, BENCH_JWT_SECRET } from '../lib/jwt.js';
import { PeerStore } from './store.js';

const room = (conversationId: string) => `c:${conversationId}`;
const key = new TextEncoder().encode(BENCH_JWT_SECRET);

let store: PeerStore | null = null;
let io: Server | null = null;
let httpServer: http.Server | null = null;

async function start(p: { databaseUrl: string }): Promise<{ port: number; pid: number }> {
  const s = (store = await PeerStore.open(p.databaseUrl));
  httpServer = http.createServer((req, res) => {
    // Setup only (not measured): conversations are created in bulk by the runner.
    if (req.method === 'POST' && req.url === '/setup') {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        s.createConversations(JSON.parse(body)).then(
          (ids) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(ids)),
          (err) => res.writeHead(500).end(String(err)),
        );
      });
      return;
    }
    if (!req.url?.startsWith('/socket.io/')) res.writeHead(404).end();
  });
  const server = (io = new Server(httpServer, {
    transports: ['websocket'],
    serveClient: false,
    perMessageDeflate: false,
    // Long enough that every storm client is still recoverable when it comes back.
    connectionStateRecovery: { maxDisconnectionDuration: 10 * 60 * 1000, skipMiddlewares: true },
  }));
  // Authenticate and look up the user's conversations before the connection is accepted, so a
  // client that sees `connect` is already in its rooms (as a Parley client is after `synced`).
  server.use((socket, next) => {
    const token = (socket.handshake.auth as { token?: unknown }).token;
    if (typeof token !== 'string') return next(new Error('unauthenticated'));
    jwtVerify(token, key, { issuer: BENCH_JWT_ISSUER, algorithms: ['HS256'] })
      .then(async ({ payload }) => {
        socket.data.userId = payload.sub;
        socket.data.rooms = [`u:${payload.sub}`, ...(await s.conversationsOf(payload.sub!)).map(room)];
      })
      .then(
        () => next(),
        () => next(new Error('unauthenticated')),
      );
  });
  server.on('connection', (socket) => {
    const userId = socket.data.userId as string;
    // A recovered socket gets its rooms back from the session.
    if (!socket.recovered) socket.join(socket.data.rooms as string[]);
    socket.on('send', (msg: { conversationId?: unknown; clientMsgId?: unknown; text?: unknown }, ack: (r: unknown) => void) => {
      if (typeof ack !== 'function') return;
      const { conversationId, clientMsgId, text } = msg ?? {};
      if (typeof conversationId !== 'string' || typeof clientMsgId !== 'string' || typeof text !== 'string' || text.length === 0 || text.length > 4000)
        return ack({ error: 'invalid_frame' });
      if (!socket.rooms.has(room(conversationId))) return ack({ error: 'not_member' });
      s.insertMessage(conversationId, userId, clientMsgId, text).then(
        (stored) => {
          if (!stored.duplicate)
            server.to(room(conversationId)).emit('message', { conversationId, id: stored.id, senderId: userId, clientMsgId, text, at: stored.at });
          ack({ id: stored.id, at: stored.at, duplicate: stored.duplicate });
        },
        () => ack({ error: 'unavailable' }),
      );
    });
  });
  const port = await new Promise<number>((resolve) => httpServer!.listen(0, '127.0.0.1', () => resolve((httpServer!.address() as { port: number }).port)));
  return { port, pid: process.pid };
}

serve({
  start,
  gc() {
    (globalThis as { gc?: () => void }).gc?.();
    return null;
  },
  connections: () => io?.engine.clientsCount ?? 0,
  async stop() {
    io?.disconnectSockets(true);
    await new Promise((r) => (io ? io.close(() => r(null)) : r(null)));
    await store?.close();
    setTimeout(() => process.exit(0), 10);
    return null;
  },
});
