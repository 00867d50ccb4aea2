import type { LookupAddress, LookupAllOptions } from 'node:dns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNotifier, type NotifierService } from '../services/notifier/service.js';
import type { LookupAll } from '../services/outbound/target-policy.js';
import { HttpReceiver } from './support/http-receiver.js';
import { notificationApi, waitFor } from './support/notifications.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';
import { TestClient } from './support/ws-client.js';
import { WebPushDevice } from './support/webpush-device.js';

/**
 * Webhooks and push endpoints are not a way into the server's network
 * (server-side request forgery): with NOTIFY_ALLOW_PRIVATE_TARGETS off (the
 * default), a local receiver is refused at registration with
 * `target_not_allowed`, and a name that passes registration but resolves
 * inward is refused at delivery, with nothing sent to it and nothing but
 * "unreachable" shown to the user. Every spelling is in
 * services/outbound/target-policy.unit.test.ts; the HTTP client's
 * behaviour (redirects, timeouts) in notification-targets.int.test.ts.
 */
let p: TestPlatform;
let receiver: HttpReceiver;
let n: ReturnType<typeof notificationApi>;
let ana: TestClient;
let notifier: NotifierService | undefined;
let conversationId = '';

/** A hostile DNS zone: every name under example.com answers 127.0.0.1. No real resolver is asked (no traffic leaves 127/8). */
const resolved: string[] = [];
const inward: LookupAll = (hostname: string, _o: LookupAllOptions, cb: (err: NodeJS.ErrnoException | null, a: LookupAddress[]) => void) => {
  resolved.push(hostname);
  if (!hostname.endsWith('.example.com')) return cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
  cb(null, [{ address: '127.0.0.1', family: 4 }]);
};

async function restartNotifier(allowPrivateTargets: boolean): Promise<void> {
  await notifier?.stop();
  const rt = p.platform.runtime;
  notifier = await startNotifier({ ...rt, config: { ...rt.config, notifications: { ...rt.config.notifications, allowPrivateTargets } } }, { resolve: inward });
}

beforeAll(async () => {
  p = await startTestPlatform({
    env: {
      NOTIFY_ALLOW_HTTP: 'true',
      NOTIFY_ALLOW_PRIVATE_TARGETS: 'false',
      NOTIFY_COALESCE_MS: '200',
      NOTIFY_RETRY_BASE_MS: '100',
      NOTIFY_RETRY_MAX_DELAY_MS: '100',
      NOTIFY_MAX_ATTEMPTS: '2',
    },
    captureLogs: true,
  });
  // The platform's notifier would resolve example.com names for real: this file's notifier resolves them inward instead.
  await p.platform.notifier!.stop();
  await restartNotifier(false);
  receiver = await HttpReceiver.start();
  n = notificationApi(p);
  ana = await TestClient.connect(p.ws, await p.token('ana'));
});
afterAll(async () => {
  await ana?.close();
  await notifier?.stop();
  await p?.stop();
  await receiver?.close();
});

describe('notification targets, private targets not allowed', () => {
  it('refuses a local receiver at registration, in any spelling, with target_not_allowed', async () => {
    const port = new URL(receiver.url('/')).port;
    const register = (body: unknown) => n.as('ray', 'POST', '/v1/notifications/channels', body);
    const direct = await register({ kind: 'webhook', url: receiver.url('/ray') });
    expect(direct).toMatchObject({
      status: 422,
      body: { code: 'target_not_allowed', retryable: false, message: expect.stringContaining('127.0.0.1 is a loopback address') },
    });
    const spellings = [
      `http://0x7f.1:${port}/ray`,
      `http://2130706433:${port}/ray`,
      `http://017700000001:${port}/ray`,
      `http://[::ffff:127.0.0.1]:${port}/ray`,
      `http://[::1]:${port}/ray`,
      `http://localhost:${port}/ray`,
      `http://good.example.com@127.0.0.1:${port}/ray`,
      'http://169.254.169.254/latest/meta-data/',
      'http://metadata.google.internal/computeMetadata/v1/',
      'http://[fd00:ec2::254]/',
      'http://10.0.0.1/',
    ];
    for (const url of spellings) {
      const r = await register({ kind: 'webhook', url });
      expect([url, r.status, r.body.code]).toEqual([url, 422, 'target_not_allowed']);
    }
    const push = await register({
      kind: 'webpush',
      subscription: { endpoint: receiver.url('/push/ray'), expirationTime: null, keys: new WebPushDevice().keys },
    });
    expect(push).toMatchObject({ status: 422, body: { code: 'target_not_allowed' } });
    expect((await n.as('ray', 'GET', '/v1/notifications/channels')).body).toEqual({ channels: [] });
    expect(receiver.requests).toEqual([]);
  });

  it('refuses at delivery a name that resolves to 127.0.0.1: nothing is POSTed, and the user reads only "unreachable"', async () => {
    const port = new URL(receiver.url('/')).port;
    const url = `http://hooks.example.com:${port}/sam`;
    const registered = await n.as('sam', 'POST', '/v1/notifications/channels', { kind: 'webhook', url });
    expect(registered).toMatchObject({ status: 201, body: { channel: { url } } });

    conversationId = (await ana.ok({ t: 'create', kind: 'direct', peer: 'sam' })).conversationId;
    await ana.ok({ t: 'send', conversationId, clientMsgId: 'ssrf-1', text: 'knock knock' });
    const [failed] = await waitFor('the notification to fail', async () => (await n.list('sam', 'failed')).length === 1 && n.list('sam'));
    expect(failed.deliveries).toEqual([expect.objectContaining({ status: 'failed', attempts: 2, lastError: 'unreachable' })]);
    expect(failed.reason).toContain('unreachable');
    expect(JSON.stringify(failed)).not.toMatch(/127\.0\.0\.1|loopback|ECONN|refused/i);
    expect(receiver.on('/sam')).toEqual([]);
    expect(resolved).toContain('hooks.example.com');
    // The operator sees why.
    const warnings = p.logs
      .map((l) => JSON.parse(l) as { msg: string; detail?: string; level: string })
      .filter((l) => l.msg === 'notification target refused by the address policy');
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings[0]).toMatchObject({ level: 'warn', detail: expect.stringContaining('hooks.example.com resolves to 127.0.0.1, a loopback address') });
  });

  it('delivers to the same channel once the operator allows private targets (the refusal was the policy, not the network)', async () => {
    await restartNotifier(true);
    await ana.ok({ t: 'send', conversationId, clientMsgId: 'ssrf-2', text: 'let me in' });
    const [req] = await waitFor('the webhook request', () => receiver.on('/sam').length === 1 && receiver.on('/sam'));
    expect(JSON.parse(req!.body.toString('utf8'))).toMatchObject({ userId: 'sam', preview: 'let me in' });
    expect(p.errorLogs).toEqual([]);
  });
});
