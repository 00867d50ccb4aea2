import type { LookupAddress, LookupAllOptions } from 'node:dns';
import { describe, expect, it } from 'vitest';
import { addressRefusal, checkTargetUrl, guardedLookup, TargetRefusedError, type LookupAll, type TargetPolicy } from './target-policy.js';

const strict: TargetPolicy = { allowHttp: true, allowPrivateTargets: false };

/** The reason a URL is refused under `policy`, or 'allowed'. */
function verdict(raw: string, policy: TargetPolicy = strict): string {
  try {
    checkTargetUrl(raw, policy);
    return 'allowed';
  } catch (err) {
    if (err instanceof TargetRefusedError) return err.reason;
    throw err;
  }
}

/** [URL, what its refusal must say]: every spelling of an inward address is refused, with the reason naming the class. */
const REFUSED: [string, RegExp][] = [
  // IPv4 loopback in every numeric spelling WHATWG URL accepts.
  ['http://127.0.0.1/', /127\.0\.0\.1 is a loopback/],
  ['http://127.0.0.1:8080/hook', /loopback/],
  ['http://127.1/', /127\.0\.0\.1 is a loopback/],
  ['http://2130706433/', /127\.0\.0\.1 is a loopback/],
  ['http://0x7f.1/', /127\.0\.0\.1 is a loopback/],
  ['http://0x7f000001/', /127\.0\.0\.1 is a loopback/],
  ['http://017700000001/', /127\.0\.0\.1 is a loopback/],
  ['http://0177.0.0.1/', /127\.0\.0\.1 is a loopback/],
  ['http://0x7f.0x0.0x0.0x1/', /127\.0\.0\.1 is a loopback/],
  ['http://0177.0.0.01/', /127\.0\.0\.1 is a loopback/],
  ['http://127.0.0.1./', /127\.0\.0\.1 is a loopback/],
  ['http://%31%32%37.0.0.1/', /127\.0\.0\.1 is a loopback/],
  ['http://127\u30020\u30020\u30021/', /127\.0\.0\.1 is a loopback/],
  ['http://\u2460\u2461\u2466.0.0.1/', /127\.0\.0\.1 is a loopback/],
  ['http://127.255.255.254/', /loopback/],
  ['HTTP://127.0.0.1/', /loopback/],
  // Credentials: `good@127.0.0.1` and `127.0.0.1:80@evil` tricks, and any userinfo at all.
  ['http://good.example.com@127.0.0.1/', /credentials/],
  ['http://127.0.0.1:80@evil.example.com/', /credentials/],
  ['https://user:pass@example.com/', /credentials/],
  ['https://user@example.com/', /credentials/],
  // Unspecified, private, shared, link-local and metadata.
  ['http://0.0.0.0/', /unspecified/],
  ['http://0/', /0\.0\.0\.0 is an unspecified/],
  ['http://0.1.2.3/', /unspecified/],
  ['http://10.0.0.1/', /private/],
  ['http://10.255.255.255/', /private/],
  ['http://012.1/', /10\.0\.0\.1 is a private/],
  ['http://172.16.0.1/', /private/],
  ['http://172.31.255.255/', /private/],
  ['http://192.168.1.1/', /private/],
  ['http://3232235777/', /192\.168\.1\.1 is a private/],
  ['http://100.64.0.1/', /carrier-grade NAT/],
  ['http://100.127.255.255/', /carrier-grade NAT/],
  ['http://169.254.169.254/latest/meta-data/', /metadata/],
  ['http://2852039166/', /169\.254\.169\.254 is a cloud metadata/],
  ['http://169.254.170.2/v2/credentials', /metadata/],
  ['http://100.100.100.200/', /metadata/],
  ['http://168.63.129.16/', /metadata/],
  ['http://169.254.1.1/', /link-local/],
  // Reserved, documentation, benchmarking, multicast, broadcast.
  ['http://192.0.0.1/', /IETF protocol/],
  ['http://192.0.2.1/', /documentation/],
  ['http://198.51.100.7/', /documentation/],
  ['http://203.0.113.9/', /documentation/],
  ['http://198.18.0.1/', /benchmarking/],
  ['http://198.19.255.255/', /benchmarking/],
  ['http://192.88.99.1/', /6to4 relay/],
  ['http://224.0.0.1/', /multicast/],
  ['http://239.255.255.250/', /multicast/],
  ['http://255.255.255.255/', /broadcast/],
  ['http://240.0.0.1/', /reserved/],
  // IPv6, and IPv6 forms that carry an IPv4 address.
  ['http://[::1]/', /loopback/],
  ['http://[0:0:0:0:0:0:0:1]/', /loopback/],
  ['http://[::]/', /unspecified/],
  ['http://[::ffff:127.0.0.1]/', /IPv4-mapped address of 127\.0\.0\.1, a loopback/],
  ['http://[::ffff:7f00:1]/', /IPv4-mapped address of 127\.0\.0\.1/],
  ['http://[0:0:0:0:0:ffff:127.0.0.1]/', /IPv4-mapped address of 127\.0\.0\.1/],
  ['http://[::ffff:169.254.169.254]/', /IPv4-mapped address of 169\.254\.169\.254, a cloud metadata/],
  ['http://[::ffff:a00:1]/', /IPv4-mapped address of 10\.0\.0\.1, a private/],
  ['http://[::127.0.0.1]/', /IPv4-compatible/],
  ['http://[::ffff:0:7f00:1]/', /IPv4-translated address of 127\.0\.0\.1/],
  ['http://[64:ff9b::7f00:1]/', /NAT64 address of 127\.0\.0\.1/],
  ['http://[64:ff9b::169.254.169.254]/', /NAT64 address of 169\.254\.169\.254/],
  ['http://[64:ff9b::c0a8:101]/', /NAT64 address of 192\.168\.1\.1, a private/],
  ['http://[64:ff9b:1::1]/', /local-use NAT64/],
  ['http://[2002:7f00:1::]/', /6to4 address of 127\.0\.0\.1/],
  ['http://[2002:c0a8:101::1]/', /6to4 address of 192\.168\.1\.1/],
  ['http://[fe80::1]/', /link-local/],
  ['http://[febf:ffff::1]/', /link-local/],
  ['http://[fc00::1]/', /unique-local/],
  ['http://[fd12:3456::1]/', /unique-local/],
  ['http://[fd00:ec2::254]/', /metadata/],
  ['http://[fec0::1]/', /site-local/],
  ['http://[ff02::1]/', /multicast/],
  ['http://[2001:db8::1]/', /documentation/],
  ['http://[2001::1]/', /IETF protocol/],
  ['http://[3fff::1]/', /documentation/],
  ['http://[100::1]/', /discard-only/],
  ['http://[4000::1]/', /not a global unicast/],
  ['http://[::2]/', /IPv4-compatible/],
  // Names that only mean something inside a network.
  ['http://localhost/', /single-label/],
  ['http://LOCALHOST./', /single-label/],
  ['http://loc%61lhost/', /single-label/],
  ['http://localhost:8080/', /single-label/],
  ['http://app.localhost/', /\.localhost/],
  ['http://metadata/computeMetadata/v1/', /single-label/],
  ['http://metadata.google.internal/computeMetadata/v1/', /metadata name/],
  ['http://METADATA.google.internal./', /metadata name/],
  ['http://printer.local/', /\.local are internal/],
  ['http://db.internal/', /\.internal/],
  ['http://router.home.arpa/', /\.home\.arpa/],
  ['http://kubernetes.default.svc/', /\.svc/],
  ['http://intranet/', /single-label/],
  // Not http(s), or not a URL at all (zone ids are not valid in URLs).
  ['ftp://example.com/', /only http and https/],
  ['file:///etc/passwd', /only http and https/],
  ['javascript:alert(1)', /only http and https/],
  ['gopher://example.com:25/', /only http and https/],
  ['https://[fe80::1%25eth0]/', /not a valid URL/],
  ['https://[fe80::1%eth0]/', /not a valid URL/],
  ['not a url', /not a valid URL/],
  ['https://exa mple.com/', /not a valid URL/],
];

const ALLOWED = [
  'https://example.com/hook',
  'https://hooks.example.com:8443/x?y=1#frag',
  'http://example.com/',
  'https://example.com./',
  'https://93.184.216.34/',
  'https://8.8.8.8/',
  'https://1.1.1.1/',
  'https://134744072/',
  'https://[2606:4700:4700::1111]/',
  'https://[2001:4860:4860::8888]/',
  'https://[2a00:1450:4001::1]/',
  'https://[::ffff:8.8.8.8]/',
  'https://[64:ff9b::808:808]/',
  'https://[2002:808:808::1]/',
  'https://172.15.255.255/',
  'https://172.32.0.1/',
  'https://100.63.255.255/',
  'https://100.128.0.1/',
  'https://169.253.255.255/',
  'https://169.255.0.1/',
  'https://192.169.0.1/',
  'https://11.0.0.1/',
  'https://126.255.255.255/',
  'https://128.0.0.1/',
  'https://223.255.255.255/',
  'https://fcm.googleapis.com/fcm/send/abc',
  'https://updates.push.services.mozilla.com/wpush/v2/x',
  'https://xn--bcher-kva.example/',
  'https://b\u00fccher.example/',
  'https://localhost.example.com/',
  'https://local.example.com/',
  'https://internal.example.org/',
];

describe('the webhook target policy', () => {
  it.each(REFUSED)('refuses %s', (raw, reason) => {
    expect(verdict(raw)).toMatch(reason);
  });

  it.each(ALLOWED)('allows %s', (raw) => {
    expect(verdict(raw)).toBe('allowed');
  });

  it('covers enough spellings to mean something', () => {
    expect(REFUSED.length + ALLOWED.length).toBeGreaterThanOrEqual(100);
  });

  it('wants https unless http is allowed, and never takes credentials, even when private targets are allowed', () => {
    expect(verdict('http://example.com/', { allowHttp: false, allowPrivateTargets: false })).toMatch(/must use https/);
    expect(verdict('https://example.com/', { allowHttp: false, allowPrivateTargets: false })).toBe('allowed');
    const dev: TargetPolicy = { allowHttp: true, allowPrivateTargets: true };
    for (const raw of ['http://127.0.0.1:3000/hook', 'http://localhost/', 'http://[::1]/', 'http://169.254.169.254/'])
      expect(verdict(raw, dev)).toBe('allowed');
    expect(verdict('http://u:p@127.0.0.1/', dev)).toMatch(/credentials/);
    expect(verdict('ftp://127.0.0.1/', dev)).toMatch(/only http and https/);
    expect(verdict('http://127.0.0.1/', { allowHttp: false, allowPrivateTargets: true })).toMatch(/must use https/);
  });

  it('judges resolved addresses as a resolver returns them, scoped ones included', () => {
    expect(addressRefusal('127.0.0.1')).toMatch(/loopback/);
    expect(addressRefusal('::ffff:127.0.0.1')).toMatch(/IPv4-mapped address of 127\.0\.0\.1/);
    expect(addressRefusal('fe80::1%eth0')).toMatch(/scoped/);
    expect(addressRefusal('0x7f.1')).toBe('not an IP address');
    expect(addressRefusal('8.8.8.8')).toBeNull();
    expect(addressRefusal('2606:4700::1111')).toBeNull();
  });
});

/** A resolver answering from a table, counting its calls. */
function fakeResolver(table: Record<string, string[]>): LookupAll & { calls: number } {
  const resolve = ((hostname: string, _options: LookupAllOptions, callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => {
    resolve.calls++;
    const list = table[hostname];
    if (!list) return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
    callback(
      null,
      list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
    );
  }) as LookupAll & { calls: number };
  resolve.calls = 0;
  return resolve;
}

function lookupOnce(
  policy: TargetPolicy,
  resolve: LookupAll | undefined,
  host: string,
  all: boolean,
): Promise<{ err: Error | null; address: unknown; family?: number }> {
  const lookup = guardedLookup(policy, resolve) as unknown as (
    h: string,
    o: object,
    cb: (err: Error | null, address: unknown, family?: number) => void,
  ) => void;
  return new Promise((resolve) => lookup(host, { all }, (err, address, family) => resolve({ err, address, family })));
}

describe('the guarded lookup (delivery)', () => {
  const table = {
    'public.example.com': ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'],
    'inward.example.com': ['127.0.0.1'],
    'mixed.example.com': ['93.184.216.34', '10.0.0.7'],
    'mapped.example.com': ['::ffff:169.254.169.254'],
    'scoped.example.com': ['fe80::1%eth0'],
  };

  it('passes public answers through, as all addresses or the first one', async () => {
    const resolve = fakeResolver(table);
    expect(await lookupOnce(strict, resolve, 'public.example.com', true)).toEqual({
      err: null,
      address: [
        { address: '93.184.216.34', family: 4 },
        { address: '2606:2800:220:1:248:1893:25c8:1946', family: 6 },
      ],
      family: undefined,
    });
    expect(await lookupOnce(strict, resolve, 'public.example.com', false)).toEqual({ err: null, address: '93.184.216.34', family: 4 });
    expect(resolve.calls).toBe(2);
  });

  it.each(['inward.example.com', 'mixed.example.com', 'mapped.example.com', 'scoped.example.com'])(
    'refuses %s: any inward address refuses the name',
    async (host) => {
      const r = await lookupOnce(strict, fakeResolver(table), host, true);
      expect(r.err).toBeInstanceOf(TargetRefusedError);
      expect(r.err!.message).toContain(`${host} resolves to`);
    },
  );

  it('lets inward answers through only when private targets are allowed, and passes resolver errors on', async () => {
    expect(await lookupOnce({ allowHttp: true, allowPrivateTargets: true }, fakeResolver(table), 'inward.example.com', false)).toMatchObject({
      err: null,
      address: '127.0.0.1',
    });
    const missing = await lookupOnce(strict, fakeResolver(table), 'missing.example.com', false);
    expect((missing.err as NodeJS.ErrnoException).code).toBe('ENOTFOUND');
  });

  it('catches a real name that resolves to loopback through the system resolver (localhost, from /etc/hosts)', async () => {
    const r = await lookupOnce(strict, undefined, 'localhost', true);
    expect(r.err).toBeInstanceOf(TargetRefusedError);
    expect(r.err!.message).toMatch(/localhost resolves to (127\.0\.0\.1|::1), a loopback address/);
  });
});
