import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { createJwtVerifier, JwtError, type JwtAlgorithm } from './jwt.js';

const NOW = 1_800_000_000;
const secret = new TextEncoder().encode('a-shared-secret-of-at-least-32-bytes!!');

function sign(alg: JwtAlgorithm, key: Parameters<SignJWT['sign']>[0], claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}) {
  return new SignJWT({ sub: 'u_alice', iss: 'parley', exp: NOW + 60, ...claims }).setProtectedHeader({ alg, ...header }).sign(key);
}

async function expectRefused(verify: (token: string, now: number) => unknown, token: Promise<string>, reason: RegExp): Promise<void> {
  const t = await token;
  expect(() => verify(t, NOW)).toThrow(reason);
}

function b64(json: unknown): string {
  return Buffer.from(JSON.stringify(json)).toString('base64url');
}

describe('createJwtVerifier', () => {
  const hs = createJwtVerifier({ algorithm: 'HS256', key: secret, issuer: 'parley' });

  it('accepts a token signed by jose and returns its claims', async () => {
    const claims = hs(await sign('HS256', secret), NOW);
    expect(claims).toMatchObject({ sub: 'u_alice', exp: NOW + 60 });
  });

  it('refuses a tampered payload, a wrong secret and an unsigned token', async () => {
    const token = await sign('HS256', secret);
    const [h, , s] = token.split('.');
    expect(() => hs(`${h}.${b64({ sub: 'u_mallory', iss: 'parley', exp: NOW + 60 })}.${s}`, NOW)).toThrow(JwtError);
    await expectRefused(hs, sign('HS256', new TextEncoder().encode('another-secret-of-at-least-32-bytes!!!')), /signature/);
    expect(() => hs(`${b64({ alg: 'none' })}.${b64({ sub: 'u_mallory', iss: 'parley', exp: NOW + 60 })}.`, NOW)).toThrow(/alg/);
  });

  it('checks exp, nbf, iss and aud like jose does', async () => {
    await expectRefused(hs, sign('HS256', secret, { exp: NOW }), /expired/);
    await expectRefused(hs, sign('HS256', secret, { exp: undefined }), /exp/);
    await expectRefused(hs, sign('HS256', secret, { nbf: NOW + 10 }), /not yet valid/);
    expect(hs(await sign('HS256', secret, { nbf: NOW }), NOW).sub).toBe('u_alice');
    await expectRefused(hs, sign('HS256', secret, { iss: 'someone-else' }), /iss/);
    const withAud = createJwtVerifier({ algorithm: 'HS256', key: secret, issuer: 'parley', audience: 'chat' });
    expect(withAud(await sign('HS256', secret, { aud: 'chat' }), NOW).sub).toBe('u_alice');
    expect(withAud(await sign('HS256', secret, { aud: ['x', 'chat'] }), NOW).sub).toBe('u_alice');
    await expectRefused(withAud, sign('HS256', secret, { aud: 'other' }), /aud/);
    await expectRefused(withAud, sign('HS256', secret), /aud/);
  });

  it('refuses unknown critical headers and malformed input', async () => {
    await expectRefused(hs, sign('HS256', secret, {}, { crit: ['b64'], b64: true }), /crit/);
    for (const bad of ['', 'a.b', 'a.b.c.d', '%%.%%.%%', `${b64([1])}.${b64({})}.`, 'bm90IGpzb24.e30.']) {
      expect(() => hs(bad, NOW)).toThrow(JwtError);
    }
  });

  it.each([
    ['RS256', () => generateKeyPairSync('rsa', { modulusLength: 2048 })],
    ['ES256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' })],
    ['EdDSA', () => generateKeyPairSync('ed25519')],
  ] as const)('verifies %s with a PEM public key and refuses HS256 tokens made with that PEM as secret', async (alg, keys) => {
    const { publicKey, privateKey } = keys();
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const verify = createJwtVerifier({ algorithm: alg, key: pem, issuer: 'parley' });
    expect(verify(await sign(alg, privateKey), NOW).sub).toBe('u_alice');
    // Algorithm confusion: the public key used as an HMAC secret must not pass.
    await expectRefused(verify, sign('HS256', new TextEncoder().encode(pem)), /alg/);
    const other = keys().privateKey;
    await expectRefused(verify, sign(alg, other), /signature/);
  });
});
