import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ErrorBody } from '../../contracts/index.js';
import { createLogger } from '../observability/logger.js';
import { guardApp, guarded, INTERNAL_ERROR_CLOSE_CODE } from './guard.js';
import { loadNativeUws, type TemplatedApp, type us_listen_socket } from './uws.js';

/**
 * Every kind of uWebSockets callback, throwing synchronously or rejecting,
 * registered through the guarded app: each failure ends only its own request
 * (500 with the error body) or connection (1011), is logged, and the process
 * keeps serving. Without the guard, the first of these kills the process
 * (uncaught exception, or uWebSockets' abort() for an unanswered request).
 */
const uWS = loadNativeUws();
const logs: string[] = [];
const log = createLogger({ level: 'error', write: (line) => logs.push(line) });
let app: TemplatedApp;
let listen: us_listen_socket;
let base: string;
const boom = () => {
  throw new Error('boom');
};
const reject = async () => {
  await Promise.resolve();
  throw new Error('async boom');
};

beforeAll(async () => {
  app = guardApp(uWS.App(), log);
  app.get('/sync', boom);
  app.post('/async', reject);
  app.any('/silent', () => undefined); // returns without answering: uWebSockets would abort() the process
  app.get('/ok', (res) => void res.end('ok'));
  app.ws('/ws/upgrade', { upgrade: boom });
  app.ws('/ws/upgrade-async', { upgrade: reject });
  app.ws('/ws/open', { open: boom });
  app.ws('/ws/open-async', { open: reject });
  app.ws('/ws/message', { message: boom });
  app.ws('/ws/message-async', { message: reject });
  app.ws('/ws/close', { close: boom });
  listen = await new Promise<us_listen_socket>((resolve, fail) => app.listen('127.0.0.1', 0, (s) => (s ? resolve(s) : fail(new Error('listen')))));
  base = `127.0.0.1:${uWS.us_socket_local_port(listen)}`;
});

afterAll(() => uWS.us_listen_socket_close(listen));

async function alive(): Promise<void> {
  expect(await (await fetch(`http://${base}/ok`)).text()).toBe('ok');
}

describe('guarded HTTP handlers', () => {
  for (const [method, path] of [
    ['GET', '/sync'],
    ['POST', '/async'],
  ] as const) {
    it(`${method} ${path}: a throwing handler answers 500 internal with the error body`, async () => {
      const res = await fetch(`http://${base}${path}`, { method, ...(method === 'POST' ? { body: '{}' } : {}) });
      expect(res.status).toBe(500);
      expect(ErrorBody.parse(await res.json())).toMatchObject({ code: 'internal', retryable: true });
      await alive();
    });
  }

  it('a handler that returns without answering does not abort the process', async () => {
    const controller = new AbortController();
    const pending = fetch(`http://${base}/silent`, { signal: controller.signal }).catch(() => 'aborted');
    await new Promise((r) => setTimeout(r, 100));
    controller.abort();
    expect(await pending).toBe('aborted');
    await alive();
  });
});

describe('guarded WebSocket callbacks', () => {
  for (const path of ['/ws/upgrade', '/ws/upgrade-async']) {
    it(`${path}: a throwing upgrade handler refuses the upgrade with 500`, async () => {
      const status = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`ws://${base}${path}`);
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => resolve(101));
        ws.on('error', () => undefined);
      });
      expect(status).toBe(500);
      await alive();
    });
  }

  for (const [path, trigger] of [
    ['/ws/open', false],
    ['/ws/open-async', false],
    ['/ws/message', true],
    ['/ws/message-async', true],
  ] as const) {
    it(`${path}: the connection is closed with 1011, the server keeps serving`, async () => {
      const ws = new WebSocket(`ws://${base}${path}`);
      if (trigger) ws.on('open', () => ws.send('hi'));
      const code = await new Promise<number>((resolve) => ws.on('close', (c) => resolve(c)));
      expect(code).toBe(INTERNAL_ERROR_CLOSE_CODE);
      await alive();
    });
  }

  it('a throwing close handler is logged; the server keeps serving', async () => {
    const ws = new WebSocket(`ws://${base}/ws/close`);
    await new Promise((r) => ws.on('open', r));
    ws.close();
    await new Promise((r) => ws.on('close', r));
    await new Promise((r) => setTimeout(r, 50));
    expect(logs.some((l) => l.includes('"where":"ws close /ws/close"'))).toBe(true);
    await alive();
  });
});

it('guarded timers and callbacks log instead of throwing', async () => {
  const before = logs.length;
  guarded(log, 'timer', boom)();
  guarded(log, 'async timer', reject)();
  await new Promise((r) => setTimeout(r, 10));
  expect(logs.length - before).toBe(2);
});

it('logged every caught failure with where it happened', () => {
  for (const where of ['http get /sync', 'http post /async', 'ws upgrade /ws/upgrade', 'ws open /ws/open', 'ws message /ws/message-async']) {
    expect(
      logs.some((l) => l.includes(`"where":"${where}"`)),
      where,
    ).toBe(true);
  }
});
