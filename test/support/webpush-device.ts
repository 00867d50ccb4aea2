import { createDecipheriv, createECDH, createPublicKey, hkdfSync, randomBytes, verify } from 'node:crypto';

/**
 * What a browser does with a Web Push message, for tests: holds the
 * subscription's key pair and auth secret, decrypts an aes128gcm body
 * (RFC 8188 framing, RFC 8291 key derivation) and checks the VAPID
 * signature (RFC 8292). Deliberately independent of the `web-push` package.
 */
export class WebPushDevice {
  private readonly ecdh = createECDH('prime256v1');
  readonly publicKey: Buffer;
  readonly authSecret = randomBytes(16);

  constructor() {
    this.publicKey = this.ecdh.generateKeys();
  }

  /** As `PushSubscription.toJSON().keys`. */
  get keys(): { p256dh: string; auth: string } {
    return { p256dh: this.publicKey.toString('base64url'), auth: this.authSecret.toString('base64url') };
  }

  decrypt(body: Buffer): string {
    // Header: salt (16) | record size (4) | key id length (1) | key id (the server's ephemeral public key).
    const salt = body.subarray(0, 16);
    const recordSize = body.readUInt32BE(16);
    const idLength = body[20]!;
    const serverKey = body.subarray(21, 21 + idLength);
    const record = body.subarray(21 + idLength);
    if (record.length > recordSize) throw new Error('more than one record');
    const shared = this.ecdh.computeSecret(serverKey);
    const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), this.publicKey, serverKey]);
    const ikm = Buffer.from(hkdfSync('sha256', shared, this.authSecret, keyInfo, 32));
    const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
    const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
    const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
    decipher.setAuthTag(record.subarray(record.length - 16));
    const padded = Buffer.concat([decipher.update(record.subarray(0, record.length - 16)), decipher.final()]);
    // The last record ends with the delimiter 0x02 followed by optional zero padding.
    let end = padded.length - 1;
    while (end >= 0 && padded[end] === 0) end--;
    if (padded[end] !== 2) throw new Error('missing last-record delimiter');
    return padded.subarray(0, end).toString('utf8');
  }
}

/**
 * Checks `Authorization: vapid t=<JWT>, k=<public key>`: the JWT is ES256
 * over the given key, its audience is the push service's origin and it has
 * not expired. Returns the key so the test can compare it with the server's.
 */
export function verifyVapid(authorization: string, audience: string): { publicKey: string; subject: string } {
  const m = /^vapid t=([^,]+),\s*k=(.+)$/.exec(authorization);
  if (!m) throw new Error(`not a VAPID authorization: ${authorization}`);
  const [header, claims, signature] = m[1]!.split('.');
  const point = Buffer.from(m[2]!, 'base64url');
  const key = createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') },
    format: 'jwk',
  });
  const ok = verify('sha256', Buffer.from(`${header}.${claims}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature!, 'base64url'));
  if (!ok) throw new Error('VAPID signature does not verify');
  const payload = JSON.parse(Buffer.from(claims!, 'base64url').toString('utf8')) as { aud: string; exp: number; sub: string };
  if (payload.aud !== audience) throw new Error(`VAPID audience ${payload.aud}, expected ${audience}`);
  if (payload.exp * 1000 < Date.now()) throw new Error('VAPID token expired');
  return { publicKey: m[2]!, subject: payload.sub };
}
