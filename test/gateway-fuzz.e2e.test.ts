import http from 'node:http';
import net from 'node:net';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_FRAME_SCHEMAS, CLIENT_FRAME_TYPES, CloseCode, ErrorBody, ReportName } from '../contracts/index.js';
import { usePlatform } from './support/fixture.js';
import {
  deeplyNested,
  headerValue,
  invalidUtf8,
  mutatedObject,
  NASTY_ESCAPES,
  pathSegment,
  queryString,
  requestHeaders,
  safeEncode,
  summarized,
} from './support/hostile-inputs.js';
import { api, TestClient, type Frame } from './support/ws-client.js';

/**
 * Hostile input against every HTTP route and the WebSocket, for a bounded
 * time: the gateway must answer each request with a 2xx or a 4xx carrying the
 * documented error body, never a 5xx, never a dropped connection; every bad
 * frame gets a typed error frame (or one of the documented close codes); and
 * the process keeps serving /healthz. A failure prints fast-check's seed and
 * path: rerun with PARLEY_FUZZ_SEED=<seed> to reproduce it.
 */

// Limits high enough that the fuzz reaches the handlers instead of the limiters (test/abuse-limits.e2e.test.ts covers those).
const fx = usePlatform({
  env: { RATE_HTTP_PER_SECOND: '1000000', RATE_FRAMES_PER_SECOND: '1000000', RATE_SENDS_PER_SECOND: '1000000', MAX_CONNECTIONS_PER_USER: '10000' },
});

const seed = process.env.PARLEY_FUZZ_SEED ? Number(process.env.PARLEY_FUZZ_SEED) : Date.now() % 2 ** 31;
/** Wall-clock budget per phase; the whole file stays well under 30 s. */
const BUDGET_MS = { http: 6000, upgrade: 2500, frames: 5500 };

/**
 * Runs a property in chunks of runs until the time budget is spent. Each chunk
 * has its own seed (seed, seed+1, ...) which fast-check prints on failure;
 * PARLEY_FUZZ_SEED=<that seed> replays the failing chunk first. (A time limit
 * inside fast-check would abandon a run half-way, with its frames in flight.)
 */
async function fuzzFor<T>(ms: number, property: fc.IAsyncProperty<T>): Promise<void> {
  const deadline = Date.now() + ms;
  for (let chunk = 0; Date.now() < deadline; chunk++) await fc.assert(property, { seed: seed + chunk, numRuns: 10, endOnFailure: true });
}

let port: number;
let token: string;
let conversationId: string;
let seq: number;
let messageId: string;
let attachmentId: string;

beforeAll(async () => {
  port = Number(new URL(fx.p.http).port);
  token = await fx.p.token('fuzzer');
  const created = await api(fx.p.http, 'POST', '/v1/conversations', token, { kind: 'group', title: 'fuzz', members: ['fuzz-peer'] });
  conversationId = created.body.conversationId;
  const fuzzer = await fx.connect('fuzzer');
  const sent = await fuzzer.ok({ t: 'send', conversationId, clientMsgId: 'seed-message', text: 'hello fuzz' });
  seq = sent.seq;
  messageId = sent.messageId;
  const upload = await fetch(`${fx.p.http}/v1/attachments?name=a.png`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'image/png' },
    body: Buffer.from('not really a png'),
  });
  attachmentId = ((await upload.json()) as { id: string }).id;
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One request on a fresh connection; rejects if the server drops the connection instead of answering. */
function request(method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // Framed explicitly: Node sends a GET/OPTIONS/DELETE body unframed, which is a second (garbage) request in HTTP/1.1.
    const framed = body ? { ...headers, 'content-length': String(body.length) } : headers;
    const req = http.request({ host: '127.0.0.1', port, method, path, headers: framed, agent: false, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', (err) => reject(new Error(`connection dropped: ${(err as NodeJS.ErrnoException).code ?? err.message}`)));
    req.end(body);
  });
}

/** The documented answer shape: 2xx, or 4xx with `{code, message, retryable}`; 429 with Retry-After. Throws otherwise. */
function checkAnswer(what: string, a: Answer, pattern: string): void {
  const text = a.body.toString('utf8').slice(0, 300);
  if (pattern === '/healthz' && (a.status === 200 || a.status === 503)) return;
  if (a.status >= 200 && a.status < 300) return;
  if (a.status < 400 || a.status >= 500) throw new Error(`${what} answered ${a.status}: ${text}`);
  let body: unknown;
  try {
    body = JSON.parse(a.body.toString('utf8'));
  } catch {
    throw new Error(`${what} answered ${a.status} without a JSON body: ${text}`);
  }
  const parsed = ErrorBody.safeParse(body);
  if (!parsed.success) throw new Error(`${what} answered ${a.status} with a body that is not the error body: ${text}`);
  if (a.status === 429 && !a.headers['retry-after']) throw new Error(`${what} answered 429 without Retry-After`);
}

async function expectHealthy(): Promise<void> {
  const r = await api(fx.p.http, 'GET', '/healthz');
  expect(r.status).toBe(200);
}

describe('HTTP: every route, hostile paths, queries, headers and bodies', () => {
  it('answers every request with a 2xx or a typed 4xx, never a 5xx or a dropped connection', async () => {
    const routes = fx.p.platform.gateway.routes;
    // Every route the gateway serves is fuzzed, including any added later.
    expect(routes.length).toBeGreaterThan(15);
    const valid = [conversationId, String(seq), attachmentId, ...ReportName.options, 'x'];
    const templates: Record<string, unknown>[] = [
      { userId: 'fuzzer', ttlSeconds: 60 },
      { kind: 'group', title: 't', members: ['fuzz-peer'] },
      { kind: 'direct', peer: 'fuzz-peer' },
      { t: 'send', conversationId, clientMsgId: 'c', text: 'hi' },
      { t: 'react', conversationId, messageId, emoji: '👍' },
      { t: 'mark_read', conversationId, seq },
      { kind: 'webhook', url: 'https://example.invalid/hook' },
      { sql: 'SELECT 1' },
    ];
    const body = fc.oneof(
      { weight: 1, arbitrary: fc.constant(undefined) },
      { weight: 4, arbitrary: mutatedObject(templates).map((o) => summarized(Buffer.from(JSON.stringify(o)))) },
      { weight: 2, arbitrary: fc.json({ maxDepth: 4 }).map((s) => summarized(Buffer.from(s))) },
      { weight: 1, arbitrary: deeplyNested(60_000).map((s) => summarized(Buffer.from(s))) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 3000 }).map((b) => summarized(Buffer.from(b))) },
      { weight: 1, arbitrary: invalidUtf8 },
      { weight: 1, arbitrary: fc.string({ maxLength: 200 }).map((s) => summarized(Buffer.from(s))) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 64 * 1024 }).map((n) => summarized(Buffer.alloc(fx.p.config.gateway.maxBodyBytes + n, 0x20))) },
    );
    const target = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.tuple(fc.constantFrom(...routes), fc.array(pathSegment(valid), { minLength: 3, maxLength: 3 })).map(([r, segs]) => {
          let i = 0;
          return { method: r.method.toUpperCase(), pattern: r.pattern, path: r.pattern.replace(/:[a-z]+/gi, () => segs[i++]!) };
        }),
      },
      {
        weight: 1,
        arbitrary: fc
          .tuple(
            fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'),
            fc.array(pathSegment(['v1', 'conversations', 'attachments', 'ws', 'healthz']), { maxLength: 6 }),
          )
          .map(([method, segs]) => ({ method, pattern: '(random)', path: `/${segs.join('/')}` })),
      },
    );
    const req = fc.record({ target, query: queryString(valid), headers: requestHeaders(token), body, trailingSlash: fc.boolean() });

    let count = 0;
    await fuzzFor(
      BUDGET_MS.http,
      fc.asyncProperty(fc.array(req, { minLength: 1, maxLength: 4 }), async (batch) => {
        await Promise.all(
          batch.map(async ({ target: t, query, headers, body: b, trailingSlash }) => {
            const path = `${t.path}${trailingSlash ? '/' : ''}${query}`;
            const sendBody = t.method === 'GET' || t.method === 'HEAD' ? undefined : b;
            const what = `${t.method} ${path.slice(0, 160)} (${sendBody?.length ?? 0} body bytes)`;
            const answer = await request(t.method, path, headers, sendBody);
            count++;
            if (t.method === 'HEAD') {
              // Headers only: the status is all there is to check.
              if (answer.status < 200 || answer.status >= 500) throw new Error(`${what} answered ${answer.status}`);
              return;
            }
            checkAnswer(what, answer, t.pattern);
          }),
        );
      }),
    );
    expect(count).toBeGreaterThan(100);
    await expectHealthy();
  });

  it('NULs, lone surrogates and odd encodings in every parameter of every route get a typed answer', async () => {
    const nasty = ['%00', 'a%00b', '%ED%A0%80', '%EF%BF%BF', '%F0%9F%98%80', '%C2%A0', '..', '%2F', 'x'.repeat(5000)];
    for (const r of fx.p.platform.gateway.routes) {
      for (const v of nasty) {
        const path = r.pattern.replace(/:[a-z]+/gi, v);
        const query = `?q=${v}&userIds=${v}&cursor=${v}&before=${v}&name=${v}&status=${v}&conversationId=${v}`;
        for (const q of ['', query]) {
          const a = await request(
            r.method.toUpperCase(),
            path + q,
            { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            r.method === 'post' ? Buffer.from(JSON.stringify({ userId: v, kind: v, url: v, sql: v })) : undefined,
          );
          checkAnswer(`${r.method} ${(path + q).slice(0, 200)}`, a, r.pattern);
        }
      }
    }
  });

  it('the reported crash: a malformed percent-encoding in a path parameter is a 400, not a dead process', async () => {
    for (const path of [
      '/v1/conversations/%ZZ/messages',
      '/v1/conversations/%E0%A4/messages',
      '/v1/attachments/%',
      '/v1/analytics/reports/%C0%AF',
      '/v1/notifications/channels/%ED%A0%80/remove',
    ]) {
      const method = path.endsWith('/remove') ? 'POST' : 'GET';
      const a = await request(method, path, { authorization: `Bearer ${token}` });
      expect(a.status, path).toBe(400);
      expect(JSON.parse(a.body.toString())).toMatchObject({ code: 'invalid_request', retryable: false });
    }
    await expectHealthy();
  });

  it('survives HTTP that is not HTTP: broken framing, garbage bytes, too many headers', async () => {
    const raw = [
      'HELLO\r\n\r\n',
      'GET /v1/conversations HTTP/1.1\nHost: a\n\n',
      'GET /healthz HTTP/1.1\r\nHost: a\r\n' + Array.from({ length: 120 }, (_, i) => `h${i}: v`).join('\r\n') + '\r\n\r\n',
      'POST /v1/conversations HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\nhello',
      'POST /v1/conversations HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n{}',
      'POST /v1/conversations HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
      'POST /v1/dev/token HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nnope\r\n0\r\n\r\n',
      'FOO /v1/ws HTTP/1.1\r\nHost: a\r\n\r\n',
      'GET http://evil.example/healthz HTTP/1.1\r\nHost: a\r\n\r\n',
      'GET /v1/conversations/\x00\xff/messages HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer \x00\r\n\r\n',
      'GET /v1/ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: \r\nSec-WebSocket-Version: 99\r\n\r\n',
    ];
    const random = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 2000 }), { seed, numRuns: 20 }).map((b) => Buffer.from(b));
    await Promise.all([...raw.map((r) => Buffer.from(r, 'latin1')), ...random].map((bytes) => rawExchange(bytes, 400)));
    await expectHealthy();
  });
});

/** Writes bytes on a fresh TCP connection and collects what comes back within `ms` (uWebSockets may answer, close, or wait). */
function rawExchange(bytes: Buffer, ms: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let out = Buffer.alloc(0);
    const done = () => {
      socket.destroy();
      resolve(out.toString('latin1'));
    };
    socket.on('data', (d) => {
      out = Buffer.concat([out, d]);
      if (isCompleteAnswer(out.toString('latin1'))) done();
    });
    socket.on('error', done);
    socket.on('close', done);
    socket.setTimeout(ms, done);
    socket.write(bytes);
  });
}

/** A full response head, plus its body when it announces a length (a 101 has none: the socket stays open). */
function isCompleteAnswer(text: string): boolean {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return false;
  if (text.startsWith('HTTP/1.1 101')) return true;
  const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))?.[1];
  return length !== undefined && Buffer.byteLength(text.slice(end + 4), 'latin1') >= Number(length);
}

describe('WebSocket upgrades with hostile tokens, positions and headers', () => {
  it('either upgrades or refuses with a typed 4xx', async () => {
    const position = fc.oneof(
      fc.constant(undefined),
      fc.string({ maxLength: 50 }).map(safeEncode),
      fc.constantFrom(...NASTY_ESCAPES),
      fc.integer({ min: 1000, max: 70_000 }).map((n) => 'p'.repeat(n)),
    );
    const tokenParam = fc.oneof(
      fc.constant(token),
      fc.constant(undefined),
      fc.string({ maxLength: 40 }).map(safeEncode),
      fc.constantFrom(...NASTY_ESCAPES),
      fc.constant(`${token}x`),
    );
    const key = fc.oneof(fc.constant('dGhlIHNhbXBsZSBub25jZQ=='), headerValue(40));
    const version = fc.constantFrom('13', '8', '', 'abc', '13, 8');
    const extra = fc.array(
      fc.tuple(fc.constantFrom('sec-websocket-protocol', 'sec-websocket-extensions', 'authorization', 'origin', 'x-request-id'), headerValue(500)),
      { maxLength: 4 },
    );
    await fuzzFor(
      BUDGET_MS.upgrade,
      fc.asyncProperty(fc.record({ position, tokenParam, key, version, extra }), async ({ position: pos, tokenParam: tok, key: k, version: v, extra: ex }) => {
        const query = [tok !== undefined ? `token=${tok}` : '', pos !== undefined ? `position=${pos}` : ''].filter(Boolean).join('&');
        const lines = [
          `GET /v1/ws${query ? `?${query}` : ''} HTTP/1.1`,
          'Host: 127.0.0.1',
          'Upgrade: websocket',
          'Connection: Upgrade',
          `Sec-WebSocket-Key: ${k}`,
          `Sec-WebSocket-Version: ${v}`,
          ...ex.map(([n, val]) => `${n}: ${val}`),
        ];
        const answer = await rawExchange(Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), 1500);
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
        const what = `upgrade ${lines.join(' | ').slice(0, 300)}`;
        if (status === 101) return;
        if (status < 400 || status >= 500) throw new Error(`${what} answered ${JSON.stringify(answer.slice(0, 200))}`);
        const body = answer.slice(answer.indexOf('\r\n\r\n') + 4);
        if (!ErrorBody.safeParse(JSON.parse(body)).success) throw new Error(`${what}: not the error body: ${body.slice(0, 200)}`);
      }),
    );
    await expectHealthy();
  });
});

describe('WebSocket frames: random, mutated, binary, oversized, bad UTF-8, deeply nested', () => {
  it('answers each with a typed error frame or closes with a documented code, and keeps serving', async () => {
    const values: Record<string, unknown> = {
      id: 'f',
      conversationId,
      messageId,
      text: 'hello',
      emoji: '👍',
      userId: 'fuzz-peer',
      userIds: ['fuzz-peer'],
      seq,
      clientMsgId: 'c',
      kind: 'group',
      title: 'fuzz',
      members: ['fuzz-peer'],
      peer: 'fuzz-peer',
      role: 'member',
      attachments: [attachmentId],
    };
    const templates = CLIENT_FRAME_TYPES.map((t) => {
      const shape = (CLIENT_FRAME_SCHEMAS[t] as unknown as { shape?: Record<string, unknown> }).shape;
      const keys = shape ? Object.keys(shape) : Object.keys(values);
      return Object.fromEntries([['t', t], ...keys.filter((k) => k !== 't' && k in values).map((k) => [k, values[k]])]);
    });
    const maxFrame = fx.p.config.gateway.maxFrameBytes;
    type Out = { data: Buffer; binary?: boolean; dropsConnection?: boolean };
    const text = (s: string) => summarized(Buffer.from(s));
    const frame: fc.Arbitrary<Out> = fc.oneof(
      { weight: 12, arbitrary: mutatedObject(templates).map((o) => ({ data: text(JSON.stringify(o)) })) },
      { weight: 3, arbitrary: fc.json({ maxDepth: 4 }).map((s) => ({ data: text(s) })) },
      { weight: 2, arbitrary: deeplyNested(30_000).map((s) => ({ data: text(s) })) },
      { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }).map((s) => ({ data: text(s) })) },
      { weight: 2, arbitrary: fc.uint8Array({ maxLength: 500 }).map((b) => ({ data: summarized(Buffer.from(b)), binary: true })) },
      {
        weight: 1,
        arbitrary: fc
          .integer({ min: 1, max: 100_000 })
          .map((n) => ({ data: text(JSON.stringify({ t: 'send', id: 'big', conversationId, clientMsgId: 'big', text: 'x'.repeat(maxFrame + n) })) })),
      },
      { weight: 1, arbitrary: invalidUtf8.map((data) => ({ data, dropsConnection: true })) },
      { weight: 1, arbitrary: fc.constant(null).map(() => ({ data: text('y'.repeat((1 << 20) + 1)), dropsConnection: true })) },
    );

    let client = await fx.connect('fuzzer');
    let checked = 0;
    let frames = 0;
    const checkErrors = (c: TestClient) => {
      for (const f of c.frames.slice(checked)) checkFrame(f);
      checked = c.frames.length;
    };
    await fuzzFor(
      BUDGET_MS.frames,
      fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 5 }), async (batch) => {
        const mayDrop = batch.some((f) => f.dropsConnection);
        for (const f of batch) client.sendRaw(f.data, f.binary);
        frames += batch.length;
        // A ping after the batch: its pong says every frame before it was read (answers to commands may follow later).
        const probe = `probe${frames}`;
        const pong = client
          .next((f) => f.t === 'pong' && f.id === probe, 10_000, client.frames.length)
          .then(
            () => null,
            (err: Error) => err,
          );
        client.sendRaw(JSON.stringify({ t: 'ping', id: probe }));
        const outcome = await Promise.race([pong, client.closed]);
        checkErrors(client);
        if (outcome instanceof Error) throw outcome;
        if (outcome === null) return;
        // Closed: only the documented ways. 1006 only when a frame broke the WebSocket layer's own limits.
        const allowed: number[] = [CloseCode.policyViolation, ...(mayDrop ? [1006] : [])];
        if (!allowed.includes(outcome.code))
          throw new Error(
            `connection closed with ${outcome.code} ${outcome.reason} after ${JSON.stringify(batch.map((f) => f.data.subarray(0, 120).toString('latin1')))}`,
          );
        client = await fx.connect('fuzzer');
        checked = 0;
      }),
    );
    // Late answers (commands finish after the probe's pong) are checked too.
    const last = await Promise.race([client.request({ t: 'ping' }, 10_000), client.closed]);
    expect(last).toMatchObject({ t: 'pong' });
    checkErrors(client);
    expect(frames).toBeGreaterThan(100);
    await expectHealthy();
  });
});

/** An error frame is the documented body (plus `t` and `id`) and never `internal`. */
function checkFrame(f: Frame): void {
  if (f.t !== 'error') return;
  const { t: _t, id: _id, ...body } = f;
  const parsed = ErrorBody.safeParse(body);
  if (!parsed.success) throw new Error(`error frame is not the documented body: ${JSON.stringify(f).slice(0, 300)}`);
  if (parsed.data.code === 'internal') throw new Error(`internal error frame: ${JSON.stringify(f).slice(0, 300)}`);
}

it('logged no errors (a handler failure caught by the guard is logged at error level)', () => {
  expect(fx.p.errorLogs).toEqual([]);
});
