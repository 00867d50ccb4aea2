import { createHash } from 'node:crypto';
import webpush from 'web-push';
import type { VapidKeys } from '../../outbound/vapid.js';
import type { AttemptOutcome } from '../domain/retry.js';
import type { TargetClient } from './target-client.js';
import { post } from './webhook.js';

export interface WebPushRequest {
  endpoint: string;
  p256dh: string;
  auth: string;
  body: string;
  conversationId: string;
  mentioned: boolean;
  vapid: VapidKeys;
  vapidSubject: string;
  timeoutMs: number;
  /** Seconds the push service keeps an undelivered message. */
  ttlSeconds?: number;
}

/**
 * Encrypts the payload for the device (RFC 8291, aes128gcm) and signs the
 * request with the VAPID key (RFC 8292), both through `web-push`; the HTTP
 * request itself goes through the notifier's TargetClient, so a push endpoint
 * (a URL a client gave, like a webhook's) gets the same target policy,
 * timeout and redirect rule. The Topic header (per conversation) lets a push service
 * replace an undelivered notification with the newer one instead of piling
 * them up on a device that is offline.
 */
export async function sendWebPush(client: TargetClient, req: WebPushRequest): Promise<AttemptOutcome> {
  let details: webpush.RequestDetails;
  try {
    details = webpush.generateRequestDetails({ endpoint: req.endpoint, keys: { p256dh: req.p256dh, auth: req.auth } }, req.body, {
      vapidDetails: { subject: req.vapidSubject, publicKey: req.vapid.publicKey, privateKey: req.vapid.privateKey },
      TTL: req.ttlSeconds ?? 86_400,
      urgency: req.mentioned ? 'high' : 'normal',
      topic: createHash('sha256').update(req.conversationId).digest('base64url').slice(0, 32),
      contentEncoding: 'aes128gcm',
    });
  } catch (err) {
    // A subscription whose keys cannot be used never will be.
    return { outcome: 'failed', error: `cannot encrypt for this subscription: ${(err as Error).message}` };
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(details.headers)) if (k.toLowerCase() !== 'content-length') headers[k] = String(v);
  return post(client, details.endpoint, { headers, body: details.body as Buffer, timeoutMs: req.timeoutMs }, true);
}
