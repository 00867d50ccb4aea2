import dns from 'node:dns';
import { BlockList, isIPv4, isIPv6, type LookupFunction } from 'node:net';

/**
 * Where the server may send requests on a user's behalf (webhooks, Web Push
 * endpoints). A URL a user registers must not turn the server into a proxy
 * into its own network (server-side request forgery): loopback, private,
 * link-local, unique-local, multicast, reserved and cloud metadata addresses
 * are refused, in every spelling, and names that can only mean something
 * inside a network are refused by name. The gateway applies `checkTargetUrl`
 * at registration; the notifier applies it again at every delivery and
 * resolves names through `guardedLookup`, so the address it connects to is
 * the address it checked (no DNS rebinding between check and connect).
 * docs/security.md ("Webhook targets") lists what is refused and why.
 */
export interface TargetPolicy {
  /** Accept http:// (development); https:// only otherwise. */
  allowHttp: boolean;
  /** Skip the address and name checks (development and tests that deliver to a local receiver). */
  allowPrivateTargets: boolean;
}

/** A target the policy refuses; `reason` is safe to show to the user who registered it (it says nothing about DNS). */
export class TargetRefusedError extends Error {
  constructor(readonly reason: string) {
    super(`target refused: ${reason}`);
    this.name = 'TargetRefusedError';
  }
}

type Family = 'ipv4' | 'ipv6';
interface Range {
  cidr: string;
  reason: string;
}

/** IANA special-purpose registries (RFC 6890 and later) plus known metadata endpoints. First match names the reason. */
const V4_RANGES: Range[] = [
  { cidr: '169.254.169.254/32', reason: 'a cloud metadata address' },
  { cidr: '169.254.170.2/32', reason: 'a cloud metadata address' },
  { cidr: '100.100.100.200/32', reason: 'a cloud metadata address' },
  // Azure's host endpoint: a public-looking address that is reachable only from inside Azure.
  { cidr: '168.63.129.16/32', reason: 'a cloud metadata address' },
  { cidr: '0.0.0.0/8', reason: 'an unspecified ("this network") address' },
  { cidr: '10.0.0.0/8', reason: 'a private address' },
  { cidr: '100.64.0.0/10', reason: 'a shared (carrier-grade NAT) address' },
  { cidr: '127.0.0.0/8', reason: 'a loopback address' },
  { cidr: '169.254.0.0/16', reason: 'a link-local address' },
  { cidr: '172.16.0.0/12', reason: 'a private address' },
  { cidr: '192.0.0.0/24', reason: 'an IETF protocol assignment' },
  { cidr: '192.0.2.0/24', reason: 'a documentation address' },
  { cidr: '192.31.196.0/24', reason: 'an AS112 address' },
  { cidr: '192.52.193.0/24', reason: 'an AMT relay address' },
  { cidr: '192.88.99.0/24', reason: 'a 6to4 relay anycast address' },
  { cidr: '192.168.0.0/16', reason: 'a private address' },
  { cidr: '192.175.48.0/24', reason: 'an AS112 address' },
  { cidr: '198.18.0.0/15', reason: 'a benchmarking address' },
  { cidr: '198.51.100.0/24', reason: 'a documentation address' },
  { cidr: '203.0.113.0/24', reason: 'a documentation address' },
  { cidr: '224.0.0.0/4', reason: 'a multicast address' },
  { cidr: '255.255.255.255/32', reason: 'the broadcast address' },
  { cidr: '240.0.0.0/4', reason: 'a reserved address' },
];

/** Checked after the IPv4-embedding prefixes (mapped, translated, NAT64, 6to4), which are judged by the IPv4 address inside. */
const V6_RANGES: Range[] = [
  { cidr: '::/128', reason: 'the unspecified address' },
  { cidr: '::1/128', reason: 'a loopback address' },
  { cidr: '::/96', reason: 'an IPv4-compatible address (deprecated)' },
  { cidr: '64:ff9b:1::/48', reason: 'a local-use NAT64 address' },
  { cidr: '100::/64', reason: 'a discard-only address' },
  { cidr: 'fd00:ec2::254/128', reason: 'a cloud metadata address' },
  { cidr: 'fc00::/7', reason: 'a unique-local address' },
  { cidr: 'fe80::/10', reason: 'a link-local address' },
  { cidr: 'fec0::/10', reason: 'a site-local address (deprecated)' },
  { cidr: 'ff00::/8', reason: 'a multicast address' },
  { cidr: '2001:db8::/32', reason: 'a documentation address' },
  // Teredo, benchmarking, ORCHID, AMT, AS112…: none is a web server's address.
  { cidr: '2001::/23', reason: 'an IETF protocol assignment' },
  { cidr: '2620:4f:8000::/48', reason: 'an AS112 address' },
  { cidr: '3fff::/20', reason: 'a documentation address' },
];

function compile(ranges: Range[], family: Family): { list: BlockList; reason: string }[] {
  return ranges.map(({ cidr, reason }) => {
    const [net, prefix] = cidr.split('/') as [string, string];
    const list = new BlockList();
    list.addSubnet(net, Number(prefix), family);
    return { list, reason };
  });
}
const V4 = compile(V4_RANGES, 'ipv4');
const V6 = compile(V6_RANGES, 'ipv6');

/**
 * Names that only mean something inside a network: single labels (resolved
 * through the host's search domains, like `metadata` or `intranet`), the
 * special-use and private-use suffixes below, and metadata host names.
 */
const INTERNAL_SUFFIXES = ['localhost', 'local', 'internal', 'intranet', 'lan', 'home', 'corp', 'private', 'localdomain', 'svc', 'home.arpa'];
const INTERNAL_NAMES = new Set(['metadata.google.internal']);

/** Why an IP address may not be contacted, or null when it is a public unicast address. */
export function addressRefusal(address: string): string | null {
  if (isIPv4(address)) return v4Refusal(address);
  if (!isIPv6(address)) return 'not an IP address';
  // A scope (`fe80::1%eth0`) only exists on link-local and other non-global addresses.
  if (address.includes('%')) return 'a scoped (zone) address';
  const bytes = ipv6Bytes(address);
  const embedded = embeddedIPv4(bytes);
  if (embedded) {
    const inner = v4Refusal(embedded.v4);
    return inner ? `${embedded.kind} of ${embedded.v4}, ${inner}` : null;
  }
  for (const r of V6) if (r.list.check(address, 'ipv6')) return r.reason;
  // Only 2000::/3 is allocated as global unicast; anything else is not a public server.
  if ((bytes[0]! & 0xe0) !== 0x20) return 'not a global unicast address';
  return null;
}

function v4Refusal(address: string): string | null {
  for (const r of V4) if (r.list.check(address, 'ipv4')) return r.reason;
  return null;
}

/** Why a host name may not be contacted by name, or null. `name` is lower case (as WHATWG URL gives it). */
export function nameRefusal(name: string): string | null {
  const host = name.replace(/\.$/, '');
  if (INTERNAL_NAMES.has(host)) return `${host} is a cloud metadata name`;
  if (!host.includes('.')) return `${host || '(empty)'} is a single-label (internal) name`;
  const suffix = INTERNAL_SUFFIXES.find((s) => host === s || host.endsWith(`.${s}`));
  if (suffix) return `names under .${suffix} are internal`;
  return null;
}

/**
 * Parses and checks a target URL. WHATWG URL parsing normalises every
 * numeric IPv4 spelling (2130706433, 0x7f.1, 017700000001, 127.1,
 * percent-encoded digits, full-width dots) to dotted decimal and IPv6 to its
 * compressed form, and rejects zone ids, so the checks below see the address
 * a connection would use. Returns the URL to contact; throws
 * TargetRefusedError.
 */
export function checkTargetUrl(raw: string, policy: TargetPolicy): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TargetRefusedError('not a valid URL');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && policy.allowHttp)) {
    throw new TargetRefusedError(policy.allowHttp ? 'only http and https URLs are allowed' : 'notification URLs must use https');
  }
  // `https://good.example@127.0.0.1/` reads like good.example to a person; nothing legitimate needs credentials here (requests are signed).
  if (url.username || url.password) throw new TargetRefusedError('URLs with credentials (user:password@) are not allowed');
  if (policy.allowPrivateTargets) return url;
  const host = hostOf(url);
  const refusal = isIPv4(host) || isIPv6(host) ? addressRefusal(host) : nameRefusal(host);
  if (refusal) throw new TargetRefusedError(isIPv4(host) || isIPv6(host) ? `${host} is ${refusal}` : refusal);
  return url;
}

/** The URL's host as a connection needs it: IPv6 without brackets. */
export function hostOf(url: URL): string {
  const h = url.hostname;
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

export type LookupAll = (
  hostname: string,
  options: dns.LookupAllOptions,
  callback: (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void,
) => void;

const systemLookup: LookupAll = (hostname, options, callback) => dns.lookup(hostname, options, callback);

/**
 * A `lookup` for http.request / net.connect that resolves through `resolve`
 * (the system resolver by default) and fails when any address it returns is
 * refused by the policy. The connection then uses exactly these addresses: a
 * name cannot answer a public address to a check and an inward one to the
 * connect. Refusing on any inward address (not only skipping it) keeps a name
 * that mixes both from being half-usable.
 */
export function guardedLookup(policy: TargetPolicy, resolve: LookupAll = systemLookup): LookupFunction {
  return ((
    hostname: string,
    options: dns.LookupOptions,
    callback: (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void,
  ) => {
    resolve(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      if (!addresses.length) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), '');
      if (!policy.allowPrivateTargets) {
        for (const a of addresses) {
          const refusal = addressRefusal(a.address);
          if (refusal) return callback(new TargetRefusedError(`${hostname} resolves to ${a.address}, ${refusal}`), '');
        }
      }
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  }) as LookupFunction;
}

/** The 16 bytes of a valid IPv6 address (no zone), including forms with a dotted IPv4 tail. */
function ipv6Bytes(address: string): Uint8Array {
  let text = address;
  const bytes = new Uint8Array(16);
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  let tail: number[] = [];
  if (dotted) {
    tail = dotted[1]!.split('.').map(Number);
    text = text.slice(0, -dotted[1]!.length) + '0:0';
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const groups = (s: string | undefined) =>
    s
      ? s
          .split(':')
          .filter((g) => g !== '')
          .map((g) => parseInt(g, 16))
      : [];
  const left = groups(head);
  const right = rest === undefined ? [] : groups(rest);
  const all = rest === undefined ? left : [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  all.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  if (dotted) bytes.set(tail, 12);
  return bytes;
}

/** IPv6 forms whose traffic goes to an IPv4 address: judged by that address. */
function embeddedIPv4(b: Uint8Array): { kind: string; v4: string } | null {
  const zero = (from: number, to: number) => b.subarray(from, to).every((x) => x === 0);
  const v4 = (at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
  // ::ffff:a.b.c.d (IPv4-mapped): a dual-stack socket connects to a.b.c.d.
  if (zero(0, 10) && b[10] === 0xff && b[11] === 0xff) return { kind: 'an IPv4-mapped address', v4: v4(12) };
  // ::ffff:0:a.b.c.d (IPv4-translated, RFC 2765).
  if (zero(0, 8) && b[8] === 0xff && b[9] === 0xff && b[10] === 0 && b[11] === 0) return { kind: 'an IPv4-translated address', v4: v4(12) };
  // 64:ff9b::a.b.c.d (NAT64 well-known prefix, RFC 6052): a NAT64 gateway forwards to a.b.c.d.
  if (b[0] === 0 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zero(4, 12)) return { kind: 'a NAT64 address', v4: v4(12) };
  // 2002:aabb:ccdd::/48 (6to4, RFC 3056): tunnelled to aa.bb.cc.dd.
  if (b[0] === 0x20 && b[1] === 0x02) return { kind: 'a 6to4 address', v4: v4(2) };
  return null;
}
