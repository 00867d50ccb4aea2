import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ErrorBody, ErrorFrame } from '../contracts/index.js';
import { retryAfterSeconds, withRetryAfter } from '../services/gateway/http/router.js';
import { usePlatform } from './support/fixture.js';
import { api, TestClient } from './support/ws-client.js';

/**
 * The abuse limits of docs/security.md ("Abuse limits"), each against a real
 * gateway: connections per user, one error frame per rate-limited burst,
 * Retry-After on every 429 and retryAfterMs on every rate-limited frame, and
 * uploads that cannot run as active content when downloaded.
 */

const ACTIVE_TYPES = [
  'image/svg+xml',
  'text/html',
  'application/xhtml+xml',
  'application/xml',
  'text/xml',
  'application/javascript',
  'text/javascript',
  'application/pdf',
  'text/plain',
  'application/octet-stream',
  'image/x-icon',
  'text/css',
];
const INLINE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'audio/mpeg', 'audio/ogg', 'video/mp4', 'video/webm'];
const MAX_CONNECTIONS = 3;
const FRAMES_PER_SECOND = 5; // bursts of 10

const fx = usePlatform({
  env: {
    MAX_CONNECTIONS_PER_USER: String(MAX_CONNECTIONS),
    RATE_FRAMES_PER_SECOND: String(FRAMES_PER_SECOND),
    RATE_SENDS_PER_SECOND: '1',
    RATE_HTTP_PER_SECOND: '1',
    ATTACHMENT_TYPES: [...ACTIVE_TYPES, ...INLINE_TYPES].join(','),
  },
});

interface Refusal {
  status: number;
  retryAfter: string | undefined;
  body: unknown;
}

/** Opens a raw WebSocket; resolves with the socket once open, or with the upgrade's refusal. */
function open(token: string): Promise<WebSocket | Refusal> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${fx.p.ws}?token=${encodeURIComponent(token)}`);
    ws.once('open', () => resolve(ws));
    ws.once('error', (err) => reject(err));
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body: JSON.parse(text) }));
    });
  });
}

const isRefusal = (x: WebSocket | Refusal): x is Refusal => !(x instanceof WebSocket);

describe('connections per user (MAX_CONNECTIONS_PER_USER)', () => {
  it('refuses the upgrade past the cap with a typed 429 and Retry-After, counting concurrent upgrades exactly', async () => {
    const token = await fx.p.token('many-tabs');
    const attempts = await Promise.all(Array.from({ length: MAX_CONNECTIONS + 4 }, () => open(token)));
    const opened = attempts.filter((a): a is WebSocket => !isRefusal(a));
    const refused = attempts.filter(isRefusal);
    expect(opened).toHaveLength(MAX_CONNECTIONS);
    expect(refused).toHaveLength(4);
    for (const r of refused) {
      expect(r.status).toBe(429);
      const body = ErrorBody.parse(r.body);
      expect(body).toMatchObject({ code: 'too_many_connections', retryable: true });
      expect(r.retryAfter).toBe(String(retryAfterSeconds(body.retryAfterMs!)));
    }
    // Another user is not affected by this one's cap.
    const other = await TestClient.connect(fx.p.ws, await fx.p.token('one-tab'));
    await other.close();
    // A closed connection frees its slot.
    await new Promise<void>((resolve) => {
      opened[0]!.once('close', () => resolve());
      opened[0]!.close();
    });
    await expect
      .poll(async () => {
        const again = await open(token);
        if (isRefusal(again)) return again.status;
        opened[0] = again;
        return 101;
      })
      .toBe(101);
    for (const ws of opened) ws.close();
  });
});

describe('one error frame per rate-limited burst (RATE_FRAMES_PER_SECOND)', () => {
  const burst = FRAMES_PER_SECOND * 2;
  const cases = [
    { name: 'one frame over the burst', frames: burst + 1 },
    { name: 'a few over', frames: burst + 5 },
    { name: 'four bursts at once', frames: burst * 4 },
  ];
  for (const c of cases) {
    it(`${c.name} (${c.frames} frames): the burst is answered, then one rate_limited frame, the rest dropped silently`, async () => {
      const client = await fx.connect(`burst-${c.frames}`);
      const from = client.frames.length;
      for (let i = 0; i < c.frames; i++) client.sendRaw(JSON.stringify({ t: 'ping', id: `burst1-${i}` }));
      const limited = await client.next((f) => f.t === 'error', 5000, from);
      expect(ErrorFrame.parse(limited)).toMatchObject({ code: 'rate_limited', retryable: true });
      expect(limited.retryAfterMs).toBeGreaterThan(0);
      // Once the limiter has recovered, a probe is answered: everything before it has been read.
      await new Promise((r) => setTimeout(r, limited.retryAfterMs + 50));
      expect((await client.request({ t: 'ping' })).t).toBe('pong');
      expectOneErrorPerBurst(client.frames.slice(from), 'burst1-', c.frames, burst);
      // After recovering (the probe took the token that came back), a new burst gets its own error frame, and again only one.
      const again = client.frames.length;
      for (let i = 0; i < c.frames; i++) client.sendRaw(JSON.stringify({ t: 'ping', id: `burst2-${i}` }));
      const second = await client.next((f) => f.t === 'error', 5000, again);
      await new Promise((r) => setTimeout(r, second.retryAfterMs + 50));
      expect((await client.request({ t: 'ping' })).t).toBe('pong');
      expectOneErrorPerBurst(client.frames.slice(again), 'burst2-', c.frames, 0);
    });
  }
});

/**
 * A burst of `sent` frames got at least `available` answers (the tokens in
 * the bucket, plus any refilled meanwhile), and after the first rate_limited
 * frame no other until a frame was accepted again (the limiter recovered):
 * never one error per dropped frame.
 */
function expectOneErrorPerBurst(answers: Record<string, any>[], prefix: string, sent: number, available: number): void {
  const pongs = answers.filter((f) => f.t === 'pong' && String(f.id).startsWith(prefix));
  const errors = answers.filter((f) => f.t === 'error');
  expect(pongs.length).toBeGreaterThanOrEqual(available);
  expect(errors.length).toBeGreaterThanOrEqual(1);
  for (const e of errors) expect(e).toMatchObject({ code: 'rate_limited', retryAfterMs: expect.any(Number) });
  let acceptedSinceError = true;
  for (const f of answers) {
    if (f.t === 'pong' && String(f.id).startsWith(prefix)) acceptedSinceError = true;
    if (f.t !== 'error') continue;
    expect(acceptedSinceError, 'a second error frame in the same burst').toBe(true);
    acceptedSinceError = false;
  }
  const dropped = sent - pongs.length;
  expect(errors.length).toBeLessThanOrEqual(1 + (pongs.length - available));
  expect(dropped).toBeGreaterThanOrEqual(errors.length);
}

describe('Retry-After on every 429, retryAfterMs on every rate-limited frame', () => {
  it.each([
    { ms: undefined, header: '1', bodyMs: 1000 },
    { ms: 0, header: '1', bodyMs: 0 },
    { ms: 1, header: '1', bodyMs: 1 },
    { ms: 999, header: '1', bodyMs: 999 },
    { ms: 1000, header: '1', bodyMs: 1000 },
    { ms: 1001, header: '2', bodyMs: 1001 },
    { ms: 61_500, header: '62', bodyMs: 61_500 },
  ])('a 429 saying $ms ms gets Retry-After: $header', ({ ms, header, bodyMs }) => {
    const body = { code: 'rate_limited', message: 'x', retryable: true, ...(ms === undefined ? {} : { retryAfterMs: ms }) };
    const out = withRetryAfter({ status: 429, body });
    expect(out.headers?.['retry-after']).toBe(header);
    expect(out.body).toMatchObject({ retryAfterMs: bodyMs });
  });

  it('HTTP: the per-user request limit answers 429 with Retry-After matching retryAfterMs', async () => {
    const token = await fx.p.token('http-flood');
    const answers = await Promise.all(Array.from({ length: 8 }, () => fetch(`${fx.p.http}/v1/unread`, { headers: { authorization: `Bearer ${token}` } })));
    const limited = answers.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    for (const r of limited) {
      const body = ErrorBody.parse(await r.json());
      expect(body.code).toBe('rate_limited');
      expect(r.headers.get('retry-after')).toBe(String(Math.max(1, Math.ceil(body.retryAfterMs! / 1000))));
    }
  });

  it('WebSocket: every refused send carries retryAfterMs (one answer per request id)', async () => {
    const client = await fx.connect('send-flood');
    const created = await client.ok({ t: 'create', kind: 'group', title: 'flood', members: [] });
    const replies = await Promise.all(Array.from({ length: 6 }, (_, i) => client.send(created.conversationId, `m${i}`)));
    const refused = replies.filter((r) => r.t === 'error');
    expect(refused.length).toBeGreaterThanOrEqual(2);
    for (const r of refused) {
      expect(r).toMatchObject({ code: 'rate_limited', retryable: true });
      expect(r.retryAfterMs).toBeGreaterThan(0);
    }
  });
});

describe('attachment downloads cannot run as active content', () => {
  const rows = [...ACTIVE_TYPES.map((type) => ({ type, disposition: 'attachment' })), ...INLINE_TYPES.map((type) => ({ type, disposition: 'inline' }))];
  it.each(rows)('$type is served $disposition, sandboxed by CSP, nosniff', async ({ type, disposition }) => {
    const user = `up-${type.replace(/[^a-z]/g, '-')}`.slice(0, 60);
    const token = await fx.p.token(user);
    const payload = `<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.cookie)"/><script>alert(1)</script> ${type}`;
    const up = await fetch(`${fx.p.http}/v1/attachments?name=${encodeURIComponent(`evil "file"'s.${type.split('/')[1]}`)}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': type },
      body: payload,
    });
    expect(up.status).toBe(201);
    const { id } = (await up.json()) as { id: string };
    const down = await fetch(`${fx.p.http}/v1/attachments/${id}`, { headers: { authorization: `Bearer ${token}` } });
    expect(down.status).toBe(200);
    expect(await down.text()).toBe(payload);
    expect(down.headers.get('content-disposition')).toMatch(new RegExp(`^${disposition}; filename\\*=UTF-8''[A-Za-z0-9%._~!-]+$`));
    expect(down.headers.get('content-security-policy')).toMatch(/(^|; )sandbox(;|$)/);
    expect(down.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(down.headers.get('x-content-type-options')).toBe('nosniff');
  });
});

it('logged no errors', async () => {
  // The HTTP flood above is answered, not logged.
  await api(fx.p.http, 'GET', '/healthz');
  expect(fx.p.errorLogs).toEqual([]);
});
