import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../support/platform.js';

/**
 * Browser-facing HTTP against a running gateway (development defaults: its own
 * origin and loopback origins allowed, nothing else): CORS answers, preflights,
 * the WebSocket Origin check at the upgrade, the token as a subprotocol, and
 * tokens kept out of the logs. The decision table itself is in
 * services/gateway/http/origin-policy.unit.test.ts.
 */

let p: TestPlatform;
let token: string;
let own: string;

beforeAll(async () => {
  p = await startTestPlatform({ withWorkers: false, captureLogs: true });
  token = await p.token('origin-alice');
  own = p.http;
});
afterAll(async () => {
  await p?.stop();
});

const EVIL = 'https://evil.example';
const LOCAL_DEV = 'http://localhost:5173';

describe('CORS on the HTTP API', () => {
  // [what, Origin header (null: none), status, Access-Control-Allow-Origin expected]
  const cases: [string, () => string | null, number, (() => string) | null][] = [
    ['no Origin (SDK, curl)', () => null, 200, null],
    ["the gateway's own page", () => own, 200, null],
    ['a loopback dev server (development default)', () => LOCAL_DEV, 200, () => LOCAL_DEV],
    ['a foreign site', () => EVIL, 403, null],
    ['the opaque origin of a sandboxed frame', () => 'null', 403, null],
  ];
  it.each(cases)('%s', async (_what, origin, status, allowOrigin) => {
    const res = await fetch(`${p.http}/v1/conversations`, { headers: { authorization: `Bearer ${token}`, ...(origin() ? { origin: origin()! } : {}) } });
    expect(res.status).toBe(status);
    expect(res.headers.get('access-control-allow-origin')).toBe(allowOrigin ? allowOrigin() : null);
    if (allowOrigin) expect(res.headers.get('vary')).toBe('Origin');
    if (status === 403) expect(((await res.json()) as { code: string }).code).toBe('forbidden');
  });

  it('refuses a write from a foreign origin before it happens', async () => {
    const res = await fetch(`${p.http}/v1/conversations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, origin: EVIL, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'direct', peer: 'origin-bob' }),
    });
    expect(res.status).toBe(403);
    const list = await fetch(`${p.http}/v1/conversations`, { headers: { authorization: `Bearer ${token}` } }).then(
      (r) => r.json() as Promise<{ conversations: unknown[] }>,
    );
    expect(list.conversations).toEqual([]);
  });

  // [what, Origin, status, allowed]
  const preflights: [string, string | null, number, boolean][] = [
    ['allowed origin', LOCAL_DEV, 204, true],
    ['foreign origin', EVIL, 403, false],
    ['no Origin (not a preflight)', null, 403, false],
  ];
  it.each(preflights)('preflight from %s', async (_what, origin, status, allowed) => {
    const res = await fetch(`${p.http}/v1/conversations`, {
      method: 'OPTIONS',
      headers: { ...(origin ? { origin } : {}), 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });
    expect(res.status).toBe(status);
    expect(res.headers.get('access-control-allow-origin')).toBe(allowed ? origin : null);
    if (allowed) {
      expect(res.headers.get('access-control-allow-methods')).toContain('POST');
      expect(res.headers.get('access-control-allow-headers')).toContain('authorization');
      expect(Number(res.headers.get('access-control-max-age'))).toBeGreaterThan(0);
    }
  });
});

/** Opens a socket; resolves with the accepted subprotocol, or the HTTP refusal (status and error code). */
function connect(
  url: string,
  options: { origin?: string; protocols?: string[] },
): Promise<{ open: true; protocol: string } | { open: false; status: number; code: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options.protocols ?? [], options.origin ? { origin: options.origin } : {});
    ws.once('open', () => {
      resolve({ open: true, protocol: ws.protocol });
      ws.close();
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ open: false, status: res.statusCode ?? 0, code: (JSON.parse(body) as { code: string }).code }));
    });
    ws.once('error', (err) => reject(err));
  });
}

describe('WebSocket upgrade: Origin and token transport', () => {
  // [what, url suffix, origin, protocols, expected]
  const cases: [
    string,
    (t: string) => string,
    () => string | undefined,
    (t: string) => string[],
    { open: boolean; status?: number; code?: string; protocol?: string },
  ][] = [
    ['no Origin, ?token= (existing clients)', (t) => `?token=${t}`, () => undefined, () => [], { open: true, protocol: '' }],
    ['own origin, token as subprotocol', () => '', () => own, (t) => ['parley.v1', `parley.bearer.${t}`], { open: true, protocol: 'parley.v1' }],
    ['loopback dev origin, token as subprotocol', () => '', () => LOCAL_DEV, (t) => ['parley.v1', `parley.bearer.${t}`], { open: true, protocol: 'parley.v1' }],
    ['foreign origin with a valid token', () => '', () => EVIL, (t) => ['parley.v1', `parley.bearer.${t}`], { open: false, status: 403, code: 'forbidden' }],
    ['foreign origin with ?token=', (t) => `?token=${t}`, () => EVIL, () => [], { open: false, status: 403, code: 'forbidden' }],
    ['opaque origin', () => '', () => 'null', (t) => ['parley.v1', `parley.bearer.${t}`], { open: false, status: 403, code: 'forbidden' }],
    [
      'own origin, bad token as subprotocol',
      () => '',
      () => own,
      () => ['parley.v1', 'parley.bearer.not-a-token'],
      { open: false, status: 401, code: 'unauthenticated' },
    ],
  ];
  it.each(cases)('%s', async (_what, suffix, origin, protocols, expected) => {
    const o = origin();
    const result = await connect(`${p.ws}${suffix(token)}`, { ...(o ? { origin: o } : {}), protocols: protocols(token) });
    expect(result).toMatchObject(expected);
  });

  it('never logs a token, whichever way it came', async () => {
    await connect(`${p.ws}?token=${token}`, {});
    await connect(p.ws, { protocols: ['parley.v1', `parley.bearer.${token}`] });
    await fetch(`${p.http}/v1/conversations?token=${token}`, { headers: { authorization: `Bearer ${token}` } });
    await fetch(`${p.http}/v1/no-such-route?token=${token}`);
    await new Promise((r) => setTimeout(r, 100));
    expect(p.logs.length).toBeGreaterThan(0);
    const signature = token.split('.')[2]!;
    expect(p.logs.filter((line) => line.includes(signature))).toEqual([]);
  });
});
