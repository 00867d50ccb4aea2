import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAll, sent, waitUntil } from './support/events.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';
import { api, TestClient } from './support/ws-client.js';

let p: TestPlatform;
const clients: TestClient[] = [];

async function metrics(): Promise<string> {
  const res = await fetch(`${p.http}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return res.text();
}

/** The value of one series, e.g. `parley_ws_connections` or `parley_errors_total{code="invalid_json",transport="ws"}`. */
function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : NaN;
}

beforeAll(async () => {
  p = await startTestPlatform({ captureLogs: true, env: { HEALTH_MAX_PROJECTOR_LAG: '5' } });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await p?.stop();
});

describe('GET /metrics', () => {
  it('exposes every service of the process in the Prometheus text format', async () => {
    const alice = await TestClient.connect(p.ws, await p.token('alice'));
    const bob = await TestClient.connect(p.ws, await p.token('bob'));
    clients.push(alice, bob);
    const conv = await api(p.http, 'POST', '/v1/conversations', await p.token('alice'), { kind: 'direct', peer: 'bob' });
    await bob.joined(conv.body.conversationId);
    await alice.joined(conv.body.conversationId);
    for (const text of ['metrics 📈', '指标']) {
      expect((await alice.send(conv.body.conversationId, text)).t).toBe('ack');
      await bob.message(conv.body.conversationId, text);
    }
    alice.sendRaw('{not json');
    await alice.next((f) => f.t === 'error' && f.code === 'invalid_json');
    await api(p.http, 'GET', '/v1/conversations');
    await waitUntil(async () => (await p.platform.projector!.runners[0]!.lag()) === 0);

    const text = await metrics();
    for (const line of text.trim().split('\n')) {
      // Names may hold digits (prom-client's nodejs_eventloop_lag_p50_seconds); test/observability-tools.e2e.test.ts parses the page for real.
      expect(line).toMatch(/^(# (HELP|TYPE) [a-z_:][a-z0-9_:]* .+|[a-z_:][a-z0-9_:]*(\{([a-z_]+="([^"\\]|\\.)*",?)+\})? (-?[0-9.e+-]+|NaN|\+Inf))$/);
    }
    expect(value(text, 'parley_ws_connections')).toBe(2);
    expect(value(text, 'parley_ws_frames_in_total')).toBeGreaterThanOrEqual(3);
    expect(value(text, 'parley_ws_frames_out_total{kind="direct"}')).toBeGreaterThanOrEqual(5); // 2 welcomes, 2 acks, 1 error
    expect(value(text, 'parley_ws_frames_out_total{kind="live"}')).toBeGreaterThanOrEqual(4); // 2 messages to 2 sockets
    expect(value(text, 'parley_event_append_seconds_count{outcome="ok"}')).toBeGreaterThanOrEqual(3);
    expect(text).toMatch(/parley_event_append_seconds_bucket\{outcome="ok",le="\+Inf"\} [0-9]+/);
    expect(value(text, 'parley_projector_lag_events{projector="read-model"}')).toBe(0);
    expect(value(text, 'parley_projector_checkpoint_seq{projector="read-model"}')).toBeGreaterThan(0);
    expect(value(text, 'parley_projector_events_total{projector="read-model",outcome="applied"}')).toBeGreaterThanOrEqual(3);
    expect(value(text, 'parley_projector_parked_events{projector="read-model",status="parked"}')).toBe(0);
    expect(value(text, 'parley_errors_total{code="invalid_json",transport="ws"}')).toBe(1);
    expect(value(text, 'parley_errors_total{code="unauthenticated",transport="http"}')).toBe(1);
    expect(value(text, 'parley_http_request_seconds_count{route="/v1/conversations",method="post",status="201"}')).toBe(1);
  });
});

describe('request ids', () => {
  it("are echoed and carried by the handler's log lines; a malformed one is replaced", async () => {
    const token = await p.token('alice');
    const res = await fetch(`${p.http}/v1/conversations`, { headers: { authorization: `Bearer ${token}`, 'x-request-id': 'trace-42' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('trace-42');
    const line = p.logs.map((l) => JSON.parse(l)).find((l) => l.requestId === 'trace-42' && l.msg === 'http request');
    expect(line).toMatchObject({ level: 'debug', component: 'http', method: 'get', route: '/v1/conversations', status: 200 });

    const odd = await fetch(`${p.http}/healthz`, { headers: { 'x-request-id': 'x'.repeat(500) } });
    expect(odd.headers.get('x-request-id')).toMatch(/^r[0-9a-z]+$/);
  });
});

/** Both projection runners (the read model's and the notifier's) have handled the whole log. */
async function caughtUp(): Promise<void> {
  const runners = [...p.platform.projector!.runners, p.platform.notifier!.runner];
  await waitUntil(async () => (await Promise.all(runners.map((r) => r.lag()))).every((lag) => lag === 0), 10_000, 'the projectors to catch up');
}

describe('GET /healthz', () => {
  it('reports the projector down while its lag exceeds the limit, with the lag in the detail, and up again once it catches up', async () => {
    const runner = p.platform.projector!.runners[0]!;
    await caughtUp();
    const ok = await api(p.http, 'GET', '/healthz');
    expect(ok.status).toBe(200);
    expect(ok.body.checks.projector).toMatchObject({ ok: true, detail: 'read-model lag 0, notifier lag 0' });

    await runner.stop();
    await appendAll(
      p.platform.runtime,
      Array.from({ length: 8 }, (_, i) => sent('g_lagging', 'alice', `backlog ${i}`)),
    );
    const down = await api(p.http, 'GET', '/healthz');
    expect(down.status).toBe(503);
    expect(down.body.down).toEqual(['projector']);
    // The notifier waits for the read model to reach each message before deciding, so it lags behind it too.
    expect(down.body.checks.projector).toMatchObject({ ok: false, detail: 'read-model lag 8, notifier lag 8 (limit 5)' });
    expect(value(await metrics(), 'parley_projector_lag_events{projector="read-model"}')).toBe(8);

    await runner.start();
    await waitUntil(async () => (await api(p.http, 'GET', '/healthz')).status === 200, 10_000, 'healthz to recover');
  });

  it('counts the notifier among the projectors: down while it alone lags, its lag named in the detail and in the metrics', async () => {
    const notifier = p.platform.notifier!.runner;
    await caughtUp();
    await notifier.stop();
    await appendAll(
      p.platform.runtime,
      Array.from({ length: 6 }, (_, i) => sent('g_quiet', 'bob', `unnotified ${i}`)),
    );
    await waitUntil(async () => (await p.platform.projector!.runners[0]!.lag()) === 0, 10_000, 'the read model to catch up');
    const down = await api(p.http, 'GET', '/healthz');
    expect(down.status).toBe(503);
    expect(down.body.down).toEqual(['projector']);
    expect(down.body.checks.projector).toMatchObject({ ok: false, detail: 'read-model lag 0, notifier lag 6 (limit 5)' });
    const text = await metrics();
    expect(value(text, 'parley_projector_lag_events{projector="notifier"}')).toBe(6);
    expect(value(text, 'parley_projector_parked_events{projector="notifier",status="parked"}')).toBe(0);

    await notifier.start();
    await waitUntil(async () => (await api(p.http, 'GET', '/healthz')).status === 200, 10_000, 'healthz to recover');
    expect((await api(p.http, 'GET', '/healthz')).body.checks.projector.detail).toBe('read-model lag 0, notifier lag 0');
  });
});

describe('nothing unexpected was logged', () => {
  it('has no error log lines', () => {
    expect(p.errorLogs).toEqual([]);
  });
});
