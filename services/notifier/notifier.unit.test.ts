import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { NotificationPayload } from '../../contracts/index.js';
import { loadConfig } from '../runtime/config.js';
import { payloadOf } from './delivery/payload.js';
import { signatureHeader } from './delivery/webhook.js';
import type { ClaimedDelivery } from './infra/delivery-store.js';

describe('webhook signatures', () => {
  it('are HMAC-SHA256 over "<timestamp>.<body>", hex, with the timestamp alongside', () => {
    const body = '{"type":"parley.notification","preview":"你好 👋"}';
    const header = signatureHeader('s3cret-s3cret-s3cret', body, 1_795_445_000);
    const expected = createHmac('sha256', 's3cret-s3cret-s3cret').update(`1795445000.${body}`, 'utf8').digest('hex');
    expect(header).toBe(`t=1795445000,v1=${expected}`);
    expect(signatureHeader('s3cret-s3cret-s3cret', body, 1_795_445_001)).not.toBe(header);
  });
});

describe('payloads', () => {
  it('match the published contract', () => {
    const d: ClaimedDelivery = {
      notificationId: '42',
      channelId: 'ch_x',
      attempts: 1,
      channel: { kind: 'webhook', url: 'https://example.com', secret: 'x'.repeat(16), p256dh: null, auth: null },
      notification: {
        userId: 'bo',
        conversationId: 'g_1',
        conversationKind: 'group',
        title: 'T',
        firstSeq: 3,
        lastSeq: 5,
        count: 2,
        mentioned: false,
        senderId: 'amy',
        preview: null,
        lastAt: 1,
      },
    };
    expect(NotificationPayload.parse(payloadOf(d))).toMatchObject({ id: '42', count: 2, preview: null, at: 1 });
  });
});

describe('notification settings', () => {
  it('default to a 10 s window, 5 attempts backing off 1-8 s, mentions only in channels, https only, public targets only', () => {
    const n = loadConfig({}).notifications;
    expect(n).toMatchObject({
      coalesceMs: 10_000,
      maxAttempts: 5,
      retryBaseMs: 1000,
      retryMaxDelayMs: 8000,
      channelMessages: 'mentions',
      allowHttp: false,
      allowPrivateTargets: false,
      vapid: undefined,
    });
  });

  it('take VAPID keys only as a pair', () => {
    const publicKey = `B${'a'.repeat(86)}`;
    expect(() => loadConfig({ NOTIFY_VAPID_PUBLIC_KEY: publicKey })).toThrow(/NOTIFY_VAPID_PRIVATE_KEY/);
    const n = loadConfig({ NOTIFY_VAPID_PUBLIC_KEY: publicKey, NOTIFY_VAPID_PRIVATE_KEY: 'b'.repeat(43) }).notifications;
    expect(n.vapid).toEqual({ publicKey, privateKey: 'b'.repeat(43) });
    expect(() => loadConfig({ NOTIFY_VAPID_SUBJECT: 'http://example.com' })).toThrow(/NOTIFY_VAPID_SUBJECT/);
  });
});
