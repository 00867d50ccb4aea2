import { createPublicKey, createSecretKey, createHmac, timingSafeEqual, verify as verifySignature, type KeyObject } from 'node:crypto';

/**
 * Synchronous JWS (compact JWT) verification with node:crypto.
 *
 * Why not jose's jwtVerify: it is asynchronous (WebCrypto), and the gateway
 * must answer a WebSocket upgrade inside uWebSockets' upgrade handler.
 * Upgrading later from a `res.cork` callback hits a uWebSockets bug that
 * closes some freshly upgraded sockets without a close frame
 * (uNetworking/uWebSockets#1928); upgrading later without cork works but
 * writes the handshake uncorked. Verifying synchronously avoids both, and is
 * cheaper per connection during a reconnect storm.
 *
 * Deliberately narrow: one configured algorithm family, claims checked the
 * way jose checks them (exp required here, nbf honoured, iss exact, aud
 * string or array), unknown `crit` headers refused.
 */
export type JwtAlgorithm = 'HS256' | 'RS256' | 'ES256' | 'EdDSA';

export interface JwtVerifierOptions {
  algorithm: JwtAlgorithm;
  /** HS256: the shared secret. Otherwise an SPKI PEM public key. */
  key: Uint8Array | string;
  issuer: string;
  audience?: string;
  /** Seconds of allowed clock skew for exp and nbf. */
  clockToleranceSeconds?: number;
}

export interface VerifiedClaims {
  sub: unknown;
  exp: number;
  [claim: string]: unknown;
}

export class JwtError extends Error {}

export type JwtVerifier = (token: string, nowSeconds?: number) => VerifiedClaims;

const SEGMENT = /^[A-Za-z0-9_-]*$/;

function decodeJson(segment: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    throw new JwtError(`${what} is not base64url JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new JwtError(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

function signatureCheck(options: JwtVerifierOptions): (signingInput: string, signature: Buffer) => boolean {
  if (options.algorithm === 'HS256') {
    const secret = createSecretKey(Buffer.from(options.key as Uint8Array));
    return (input, signature) => {
      const expected = createHmac('sha256', secret).update(input).digest();
      return signature.length === expected.length && timingSafeEqual(signature, expected);
    };
  }
  const publicKey: KeyObject = createPublicKey(options.key as string);
  switch (options.algorithm) {
    case 'RS256':
      return (input, signature) => verifySignature('sha256', Buffer.from(input), publicKey, signature);
    case 'ES256':
      // JWS carries ECDSA signatures as raw r||s, not DER.
      return (input, signature) =>
        signature.length === 64 && verifySignature('sha256', Buffer.from(input), { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
    case 'EdDSA':
      return (input, signature) => verifySignature(null, Buffer.from(input), publicKey, signature);
  }
}

export function createJwtVerifier(options: JwtVerifierOptions): JwtVerifier {
  const checkSignature = signatureCheck(options);
  const tolerance = options.clockToleranceSeconds ?? 0;
  return (token, nowSeconds = Math.floor(Date.now() / 1000)) => {
    const parts = token.split('.');
    if (parts.length !== 3 || !parts.every((p) => SEGMENT.test(p))) throw new JwtError('not a compact JWS');
    const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
    const header = decodeJson(headerPart, 'header');
    if (header.alg !== options.algorithm) throw new JwtError('unexpected "alg"');
    if (header.crit !== undefined) throw new JwtError('unsupported "crit" header');
    if (!checkSignature(`${headerPart}.${payloadPart}`, Buffer.from(signaturePart, 'base64url'))) throw new JwtError('signature verification failed');

    const claims = decodeJson(payloadPart, 'payload');
    if (typeof claims.exp !== 'number' || !Number.isFinite(claims.exp)) throw new JwtError('"exp" claim missing or not a number');
    if (claims.exp <= nowSeconds - tolerance) throw new JwtError('token expired');
    if (claims.nbf !== undefined) {
      if (typeof claims.nbf !== 'number') throw new JwtError('"nbf" claim is not a number');
      if (claims.nbf > nowSeconds + tolerance) throw new JwtError('token not yet valid');
    }
    if (claims.iss !== options.issuer) throw new JwtError('unexpected "iss"');
    if (options.audience !== undefined) {
      const aud = claims.aud;
      const ok = typeof aud === 'string' ? aud === options.audience : Array.isArray(aud) && aud.includes(options.audience);
      if (!ok) throw new JwtError('unexpected "aud"');
    }
    return claims as VerifiedClaims;
  };
}
