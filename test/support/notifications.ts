import { createHmac, timingSafeEqual } from 'node:crypto';
import type { TestPlatform } from './platform.js';
import type { ReceivedRequest } from './http-receiver.js';
import { api } from './ws-client.js';

/** Polls `check` until it returns something truthy. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Verifies `Parley-Signature` the way docs/notifications.md tells receivers to. */
export function verifySignature(req: ReceivedRequest, secret: string, toleranceSeconds = 300): boolean {
  const header = String(req.headers['parley-signature'] ?? '');
  const parts = Object.fromEntries(header.split(',').map((kv) => kv.split('=') as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > toleranceSeconds || !parts.v1) return false;
  const expected = createHmac('sha256', secret)
    .update(`${t}.${req.body.toString('utf8')}`)
    .digest();
  const given = Buffer.from(parts.v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Notification HTTP calls as one user. */
export function notificationApi(p: TestPlatform) {
  const as = async (userId: string, method: 'GET' | 'POST', path: string, body?: unknown) => api(p.http, method, path, await p.token(userId), body);
  return {
    as,
    async webhook(userId: string, url: string): Promise<{ id: string; secret: string }> {
      const r = await as(userId, 'POST', '/v1/notifications/channels', { kind: 'webhook', url });
      if (r.status !== 201) throw new Error(JSON.stringify(r));
      return { id: r.body.channel.id, secret: r.body.secret };
    },
    async list(userId: string, status?: string): Promise<any[]> {
      const r = await as(userId, 'GET', `/v1/notifications${status ? `?status=${status}` : ''}`);
      if (r.status !== 200) throw new Error(JSON.stringify(r));
      return r.body.notifications;
    },
    command: (userId: string, command: Record<string, unknown>) => as(userId, 'POST', '/v1/commands', command),
  };
}
