import { createHmac } from 'node:crypto';
import { classifyStatus, type AttemptOutcome } from '../domain/retry.js';
import type { PostRequest, TargetClient } from './target-client.js';

/**
 * `Parley-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
 * The timestamp is inside the MAC so a captured request cannot be replayed
 * later with a fresh timestamp (receivers reject old ones).
 */
export function signatureHeader(secret: string, body: string, timestampSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex');
  return `t=${timestampSeconds},v1=${mac}`;
}

export interface WebhookRequest {
  url: string;
  secret: string;
  body: string;
  notificationId: string;
  attempt: number;
  timeoutMs: number;
}

/**
 * POSTs a signed notification through the target policy's client. Redirects
 * are not followed (a 3xx fails the delivery): a webhook is registered with
 * its final URL, and a redirect would be a way around the address checks.
 */
export async function sendWebhook(client: TargetClient, req: WebhookRequest): Promise<AttemptOutcome> {
  const headers = {
    'content-type': 'application/json',
    'user-agent': 'parley-notifier/1',
    'parley-signature': signatureHeader(req.secret, req.body, Math.floor(Date.now() / 1000)),
    'parley-notification-id': req.notificationId,
    'parley-attempt': String(req.attempt),
  };
  return post(client, req.url, { headers, body: req.body, timeoutMs: req.timeoutMs }, false);
}

/**
 * One HTTP POST, its outcome classified. Anything but an HTTP answer (refused
 * by the target policy, DNS failure, connection refused, TLS error, timeout)
 * is "unreachable" to the user, and retryable: telling these apart would
 * tell a user which internal names exist and which ports are open. The
 * details are in `detail`, for the server log.
 */
export async function post(client: TargetClient, url: string, req: PostRequest, pushService: boolean): Promise<AttemptOutcome> {
  const r = await client.post(url, req);
  if ('status' in r) return classifyStatus(r.status, pushService);
  return { outcome: 'retry', error: 'unreachable', detail: r.detail, ...(r.refused ? { refused: true } : {}) };
}
