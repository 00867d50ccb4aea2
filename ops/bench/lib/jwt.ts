import { createHmac } from 'node:crypto';

/**
 * HS256 tokens minted locally, the same shape the gateway verifies (sub,
 * iss, exp): 20,000 users must not cost 20,000 HTTP round trips before a
 * storm. Both Parley and the peer verify these with the same secret.
 */
export const BENCH_JWT_SECRET = 'parley-bench-secret-0123456789abcdef0123456789';
export const BENCH_JWT_ISSUER = 'parley';

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64url');
const HEADER = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));

export function mintToken(userId: string, secret = BENCH_JWT_SECRET, ttlSeconds = 6 * 3600): string {
  const now = Math.floor(Date.now() / 1000);
  const body = b64(JSON.stringify({ sub: userId, iss: BENCH_JWT_ISSUER, iat: now, exp: now + ttlSeconds }));
  const sig = createHmac('sha256', secret).update(`${HEADER}.${body}`).digest('base64url');
  return `${HEADER}.${body}.${sig}`;
}
