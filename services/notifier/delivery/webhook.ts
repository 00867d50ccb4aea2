import { createHmac } from 'node:crypto';
import { classifyStatus, type AttemptOutcome } from '../domain/retry.js';

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

/** POSTs a signed notification. Redirects are not followed: a webhook is registered with its final URL. */
export async function sendWebhook(req: WebhookRequest): Promise<AttemptOutcome> {
  const headers = {
    'content-type': 'application/json',
    'user-agent': 'parley-notifier/1',
    'parley-signature': signatureHeader(req.secret, req.body, Math.floor(Date.now() / 1000)),
    'parley-notification-id': req.notificationId,
    'parley-attempt': String(req.attempt),
  };
  return post(req.url, { headers, body: req.body, timeoutMs: req.timeoutMs }, false);
}

/** One HTTP POST, its outcome classified; network errors and timeouts are retryable. */
export async function post(url: string, req: { headers: Record<string, string>; body: string | Buffer; timeoutMs: number }, pushService: boolean): Promise<AttemptOutcome> {
  try {
    const res = await fetch(url, { method: 'POST', headers: req.headers, body: req.body, redirect: 'manual', signal: AbortSignal.timeout(req.timeoutMs) });
    // Drain the body so the connection can be reused.
    await res.arrayBuffer().catch(() => undefined);
    return classifyStatus(res.status, pushService);
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const detail = e.name === 'TimeoutError' ? `no answer within ${req.timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
    return { outcome: 'retry', error: `request failed: ${detail}` };
  }
}
