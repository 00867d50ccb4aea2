import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotificationPayload } from '../contracts/index.js';
import { HttpReceiver } from './support/http-receiver.js';
import { notificationApi, waitFor } from './support/notifications.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';
import { TestClient } from './support/ws-client.js';
import { verifyVapid, WebPushDevice } from './support/webpush-device.js';

let p: TestPlatform;
let push: HttpReceiver;
let n: ReturnType<typeof notificationApi>;
let ana: TestClient;

beforeAll(async () => {
  // The push service stand-in is on 127.0.0.1: private targets are refused unless allowed (notification-targets tests).
  p = await startTestPlatform({
    env: {
      NOTIFY_COALESCE_MS: '200',
      NOTIFY_ALLOW_HTTP: 'true',
      NOTIFY_ALLOW_PRIVATE_TARGETS: 'true',
      NOTIFY_RETRY_BASE_MS: '200',
      NOTIFY_RATE_PER_MINUTE: '1',
    },
  });
  push = await HttpReceiver.start();
  n = notificationApi(p);
  ana = await TestClient.connect(p.ws, await p.token('ana'));
});
afterAll(async () => {
  await ana?.close();
  await p?.stop();
  await push?.close();
});

const subscribe = (userId: string, device: WebPushDevice, path: string) =>
  n.as(userId, 'POST', '/v1/notifications/channels', { kind: 'webpush', subscription: { endpoint: push.url(path), expirationTime: null, keys: device.keys } });

describe('Web Push', () => {
  it('delivers an encrypted payload that the device decrypts, signed with the served VAPID key', async () => {
    const device = new WebPushDevice();
    expect((await subscribe('hal', device, '/push/hal')).status).toBe(201);
    const { publicKey } = (await n.as('hal', 'GET', '/v1/notifications/vapid-public-key')).body;
    expect(Buffer.from(publicKey, 'base64url')).toHaveLength(65);

    const d = await ana.ok({ t: 'create', kind: 'direct', peer: 'hal' });
    const sent = await ana.ok({ t: 'send', conversationId: d.conversationId, clientMsgId: 'wp1', text: '你好 hal 👋🏽 مرحبا' });
    const [req] = await waitFor('the push request', () => push.on('/push/hal').length === 1 && push.on('/push/hal'));
    expect(req!.headers['content-encoding']).toBe('aes128gcm');
    expect(Number(req!.headers.ttl)).toBeGreaterThan(0);
    expect(req!.body.toString('utf8')).not.toContain('hal');
    const vapid = verifyVapid(String(req!.headers.authorization), push.url('').replace(/\/$/, ''));
    expect(vapid.publicKey).toBe(publicKey);

    const payload = NotificationPayload.parse(JSON.parse(device.decrypt(req!.body)));
    expect(payload).toMatchObject({
      userId: 'hal',
      conversationId: d.conversationId,
      conversationKind: 'direct',
      count: 1,
      senderId: 'ana',
      preview: '你好 hal 👋🏽 مرحبا',
      lastSeq: sent.seq,
    });
    // Another device's keys cannot read it.
    expect(() => new WebPushDevice().decrypt(req!.body)).toThrow();
    await waitFor('sent', async () => (await n.list('hal', 'sent')).length === 1);
  });

  it('an expired subscription (410) fails the notification and removes the channel', async () => {
    push.respond = (req) => (req.path === '/push/ivy' ? 410 : 200);
    const created = await subscribe('ivy', new WebPushDevice(), '/push/ivy');
    const d = await ana.ok({ t: 'create', kind: 'direct', peer: 'ivy' });
    await ana.ok({ t: 'send', conversationId: d.conversationId, clientMsgId: 'wp2', text: 'gone?' });
    const [failed] = await waitFor('failed', async () => (await n.list('ivy', 'failed')).length === 1 && n.list('ivy'));
    expect(failed.reason).toContain(`${created.body.channel.id}: HTTP 410`);
    expect(push.on('/push/ivy')).toHaveLength(1);
    expect((await n.as('ivy', 'GET', '/v1/notifications/channels')).body).toEqual({ channels: [] });
  });
});

describe('per-device rate limits', () => {
  it('hold a notification over the limit back without spending an attempt', async () => {
    const hook = await n.webhook('lee', push.url('/hook/lee'));
    const d = await ana.ok({ t: 'create', kind: 'direct', peer: 'lee' });
    await ana.ok({ t: 'send', conversationId: d.conversationId, clientMsgId: 'rl1', text: 'first' });
    await waitFor('the first one sent', async () => (await n.list('lee', 'sent')).length === 1);
    await ana.ok({ t: 'send', conversationId: d.conversationId, clientMsgId: 'rl2', text: 'second' });
    // One per minute in this file: the second waits for its turn instead of failing.
    const held = await waitFor('the second one held back', async () =>
      (await n.list('lee', 'pending')).find((x) => x.deliveries[0]?.nextAttemptAt > Date.now() + 30_000),
    );
    expect(held.deliveries[0]).toMatchObject({ channelId: hook.id, status: 'pending', attempts: 0, lastError: null });
    expect(push.on('/hook/lee')).toHaveLength(1);
  });
});

describe('notification channels over HTTP', () => {
  it('are validated, listed, replaced when registered again, and removed', async () => {
    const bad = async (body: unknown) => (await n.as('joy', 'POST', '/v1/notifications/channels', body)).body.code;
    expect(await bad({ kind: 'webhook', url: 'ftp://example.com/x' })).toBe('invalid_request');
    expect(await bad({ kind: 'webhook', url: 'https://example.com/x', extra: 1 })).toBe('invalid_request');
    expect(await bad({ kind: 'webhook', url: 'https://example.com/x', secret: 'short' })).toBe('invalid_request');
    expect(await bad({ kind: 'sms', url: 'https://example.com/x' })).toBe('invalid_request');
    const wrongKey = { ...new WebPushDevice().keys, p256dh: Buffer.alloc(65, 1).toString('base64url') };
    expect(await bad({ kind: 'webpush', subscription: { endpoint: 'https://push.example/x', keys: wrongKey } })).toBe('invalid_request');
    expect((await n.as('joy', 'POST', '/v1/notifications/channels', 'not json')).body.code).toBe('invalid_json');

    const first = await n.as('joy', 'POST', '/v1/notifications/channels', {
      kind: 'webhook',
      url: 'https://example.com/hook',
      secret: 'a-secret-of-16-chars-or-more',
    });
    expect(first).toMatchObject({
      status: 201,
      body: { created: true, secret: 'a-secret-of-16-chars-or-more', channel: { kind: 'webhook', url: 'https://example.com/hook' } },
    });
    const again = await n.as('joy', 'POST', '/v1/notifications/channels', { kind: 'webhook', url: 'https://example.com/hook' });
    expect(again).toMatchObject({ status: 200, body: { created: false, channel: { id: first.body.channel.id } } });
    expect(again.body.secret).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const list = (await n.as('joy', 'GET', '/v1/notifications/channels')).body.channels;
    expect(list).toEqual([{ id: first.body.channel.id, kind: 'webhook', url: 'https://example.com/hook', createdAt: expect.any(Number) }]);
    expect(JSON.stringify(list)).not.toContain('secret');

    // Only the owner can remove a channel.
    expect((await n.as('kay', 'POST', `/v1/notifications/channels/${first.body.channel.id}/remove`)).body.code).toBe('not_found');
    expect((await n.as('joy', 'POST', `/v1/notifications/channels/${first.body.channel.id}/remove`)).body).toEqual({ removed: true });
    expect((await n.as('joy', 'GET', '/v1/notifications/channels')).body.channels).toEqual([]);

    expect((await n.as('joy', 'GET', '/v1/notifications?status=lost')).body.code).toBe('invalid_request');
    expect(await n.as('joy', 'GET', '/v1/notifications?limit=5')).toEqual({ status: 200, body: { notifications: [], nextCursor: null } });
    expect((await n.as('joy', 'GET', '/v1/notifications/vapid-public-key')).body.publicKey).toBe(
      (await n.as('kay', 'GET', '/v1/notifications/vapid-public-key')).body.publicKey,
    );
    expect((await fetch(`${p.http}/v1/notifications`)).status).toBe(401);
    expect(p.errorLogs).toEqual([]);
  });
});
