import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { SignJWT } from 'jose';
import { UserId } from '../../contracts/index.js';
import type { Config } from '../runtime/config.js';
import { AppError } from '../runtime/errors.js';
import { createJwtVerifier } from './jwt.js';

export interface AuthenticatedUser {
  userId: string;
  /** Milliseconds since the epoch (the token's `exp` claim is in seconds); the gateway closes connections whose token expires. */
  expiresAt: number;
}

export interface Authenticator {
  /** Synchronous so the gateway can answer a WebSocket upgrade inside uWebSockets' handler (see jwt.ts). */
  verifySync(token: string): AuthenticatedUser;
  verify(token: string): Promise<AuthenticatedUser>;
  /** Present only when dev tokens are enabled. `expiresAt` is in milliseconds, like every time in the protocol. */
  issueDevToken?: (userId: string, ttlSeconds: number) => Promise<{ token: string; expiresAt: number }>;
}

/** A dev secret generated on first start and kept under the data dir, so tokens survive restarts. */
function devSecret(dataDir: string): Uint8Array {
  const file = path.join(dataDir, 'dev-jwt-secret');
  fs.mkdirSync(dataDir, { recursive: true });
  try {
    return Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64url');
  } catch {
    const secret = randomBytes(32).toString('base64url');
    try {
      fs.writeFileSync(file, secret, { mode: 0o600, flag: 'wx' });
    } catch {
      // Another process created it first: use theirs.
      return Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64url');
    }
    return Buffer.from(secret, 'base64url');
  }
}

/**
 * Tokens are JWTs whose `sub` is the user id. Production verifies them with
 * AUTH_JWT_SECRET (HS256) or AUTH_JWT_PUBLIC_KEY (RS256/ES256/EdDSA, PEM);
 * without either, a local dev secret is used and POST /v1/dev/token issues
 * tokens for any user id.
 */
export async function createAuthenticator(config: Config): Promise<Authenticator> {
  const { jwtSecret, jwtPublicKey, jwtAlgorithm, issuer, audience, devTokens } = config.auth;
  const hmacKey = jwtPublicKey ? null : jwtSecret ? new TextEncoder().encode(jwtSecret) : devSecret(config.dataDir);
  const verifyJwt = createJwtVerifier(
    hmacKey
      ? { algorithm: 'HS256', key: hmacKey, issuer, ...(audience ? { audience } : {}) }
      : { algorithm: jwtAlgorithm, key: jwtPublicKey!, issuer, ...(audience ? { audience } : {}) },
  );

  const verifySync = (token: string): AuthenticatedUser => {
    try {
      const claims = verifyJwt(token);
      const userId = UserId.safeParse(claims.sub);
      if (!userId.success) throw new Error('token subject is not a valid user id');
      return { userId: userId.data, expiresAt: claims.exp * 1000 };
    } catch (err) {
      throw new AppError('unauthenticated', 'invalid or expired token', { cause: err });
    }
  };
  const authenticator: Authenticator = {
    verifySync,
    verify: async (token) => verifySync(token),
  };
  if (devTokens && hmacKey) {
    authenticator.issueDevToken = async (userId, ttlSeconds) => {
      // The JWT's `exp` claim is in seconds (RFC 7519); the answer's `expiresAt`, like every protocol time, in milliseconds.
      const exp = Math.floor(Date.now() / 1000) + ttlSeconds;
      const jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(userId).setIssuer(issuer).setIssuedAt().setExpirationTime(exp);
      if (audience) jwt.setAudience(audience);
      return { token: await jwt.sign(hmacKey), expiresAt: exp * 1000 };
    };
  }
  return authenticator;
}
