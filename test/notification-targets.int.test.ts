import type { LookupAddress, LookupAllOptions } from 'node:dns';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import webpush from 'web-push';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TargetClient } from '../services/notifier/delivery/target-client.js';
import { sendWebhook } from '../services/notifier/delivery/webhook.js';
import { sendWebPush } from '../services/notifier/delivery/webpush.js';
import type { LookupAll, TargetPolicy } from '../services/outbound/target-policy.js';
import { HttpReceiver } from './support/http-receiver.js';
import { WebPushDevice } from './support/webpush-device.js';

/**
 * The notifier's HTTP client under the target policy, against real local
 * servers: refused targets get no request at all (checked at the receiver),
 * names are judged by the addresses they resolve to and those are the
 * addresses connected to, redirects are answers (never followed), and what
 * the user gets to read is a status or "unreachable", never errno text.
 */
const strict: TargetPolicy = { allowHttp: true, allowPrivateTargets: false };
const dev: TargetPolicy = { allowHttp: true, allowPrivateTargets: true };

let receiver: HttpReceiver;
const clients: TargetClient[] = [];
const servers: http.Server[] = [];

function client(policy: TargetPolicy, resolve?: LookupAll): TargetClient {
  const c = new TargetClient(policy, resolve);
  clients.push(c);
  return c;
}

/** Resolves made-up names under example.com to the local receiver, the way a hostile DNS zone would; counts calls. */
function inwardResolver(): LookupAll & { calls: string[] } {
  const calls: string[] = [];
  const resolve = ((hostname: string, _o: LookupAllOptions, cb: (err: NodeJS.ErrnoException | null, a: LookupAddress[]) => void) => {
    calls.push(hostname);
    if (!hostname.endsWith('.example.com')) return cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
    cb(null, [{ address: '127.0.0.1', family: 4 }]);
  }) as LookupAll & { calls: string[] };
  resolve.calls = calls;
  return resolve;
}

async function server(handler: http.RequestListener): Promise<number> {
  const s = http.createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as AddressInfo).port;
}

const hook = (c: TargetClient, url: string, timeoutMs = 2000) =>
  sendWebhook(c, { url, secret: 's'.repeat(20), body: '{"x":1}', notificationId: '1', attempt: 1, timeoutMs });

beforeAll(async () => {
  receiver = await HttpReceiver.start();
});
afterAll(async () => {
  for (const c of clients) c.close();
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  await receiver?.close();
});

describe('webhook delivery under the target policy', () => {
  it('refuses a loopback receiver at delivery: nothing reaches it, and the user reads "unreachable"', async () => {
    const outcome = await hook(client(strict), receiver.url('/direct'));
    expect(outcome).toEqual({ outcome: 'retry', error: 'unreachable', detail: expect.stringMatching(/127\.0\.0\.1 is a loopback address/), refused: true });
    expect(receiver.on('/direct')).toEqual([]);
  });

  it('refuses a name that resolves inward, after resolving it once; the same name is delivered when private targets are allowed', async () => {
    const port = new URL(receiver.url('/')).port;
    const resolve = inwardResolver();
    const refused = await hook(client(strict, resolve), `http://hooks.example.com:${port}/by-name`);
    expect(refused).toMatchObject({
      outcome: 'retry',
      error: 'unreachable',
      refused: true,
      detail: expect.stringContaining('hooks.example.com resolves to 127.0.0.1, a loopback address'),
    });
    expect(resolve.calls).toEqual(['hooks.example.com']);
    expect(receiver.on('/by-name')).toEqual([]);

    // The control: the connection goes to exactly what the guarded lookup returned (no second, unchecked resolution).
    const allowed = await hook(client(dev, resolve), `http://hooks.example.com:${port}/by-name`);
    expect(allowed).toEqual({ outcome: 'sent' });
    expect(receiver.on('/by-name')).toHaveLength(1);
    expect(resolve.calls).toEqual(['hooks.example.com', 'hooks.example.com']);
  });

  it('does not follow redirects, even to an allowed target: a 3xx fails the delivery', async () => {
    for (const status of [301, 302, 303, 307, 308]) {
      const port = await server((_req, res) => res.writeHead(status, { location: receiver.url(`/redirected-${status}`) }).end());
      const outcome = await hook(client(dev), `http://127.0.0.1:${port}/hook`);
      expect(outcome).toEqual({ outcome: 'failed', error: `HTTP ${status}: redirects are not followed` });
      expect(receiver.on(`/redirected-${status}`)).toEqual([]);
    }
  });

  it('says the same "unreachable" for a closed port, a silent server and a refused address; the details are for the log only', async () => {
    const closedPort = await server(() => undefined);
    await new Promise((r) => servers.pop()!.close(r));
    const silentPort = await server(() => undefined); // accepts, never answers
    const c = client(dev);
    const closed = await hook(c, `http://127.0.0.1:${closedPort}/`);
    const silent = await hook(c, `http://127.0.0.1:${silentPort}/`, 300);
    const refused = await hook(client(strict), `http://127.0.0.1:${closedPort}/`);
    for (const o of [closed, silent, refused]) {
      expect(o).toMatchObject({ outcome: 'retry', error: 'unreachable' });
    }
    expect(closed).toMatchObject({ detail: expect.stringContaining('ECONNREFUSED') });
    expect(silent).toMatchObject({ detail: expect.stringContaining('no answer within 300 ms') });
    expect(JSON.stringify([closed, silent, refused].map((o) => ('error' in o ? o.error : '')))).not.toMatch(/ECONN|127\.0\.0\.1|port|ms/);
  });

  it('answers a status as soon as it has one, without reading an endless body', async () => {
    const port = await server((_req, res) => {
      res.writeHead(503);
      const chunk = Buffer.alloc(16 * 1024, 120);
      const timer = setInterval(() => res.write(chunk), 1);
      res.on('close', () => clearInterval(timer));
    });
    const started = Date.now();
    expect(await hook(client(dev), `http://127.0.0.1:${port}/`, 5000)).toEqual({ outcome: 'retry', error: 'HTTP 503' });
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('Web Push delivery under the same policy', () => {
  const vapid = webpush.generateVAPIDKeys();
  const push = (c: TargetClient, endpoint: string) =>
    sendWebPush(c, {
      endpoint,
      ...new WebPushDevice().keys,
      body: '{"x":1}',
      conversationId: 'd_1',
      mentioned: false,
      vapid,
      vapidSubject: 'mailto:ops@example.com',
      timeoutMs: 2000,
    });

  it('refuses a push endpoint on a loopback address or a name resolving inward; nothing reaches it', async () => {
    expect(await push(client(strict), receiver.url('/push/direct'))).toMatchObject({ outcome: 'retry', error: 'unreachable', refused: true });
    const port = new URL(receiver.url('/')).port;
    expect(await push(client(strict, inwardResolver()), `http://push.example.com:${port}/push/by-name`)).toMatchObject({
      outcome: 'retry',
      error: 'unreachable',
      refused: true,
    });
    expect(receiver.requests.filter((r) => r.path.startsWith('/push/'))).toEqual([]);
    // The control: allowed, the same endpoint gets the encrypted request.
    expect(await push(client(dev, inwardResolver()), `http://push.example.com:${port}/push/by-name`)).toEqual({ outcome: 'sent' });
    expect(receiver.on('/push/by-name')).toHaveLength(1);
  });
});
