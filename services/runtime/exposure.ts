import net from 'node:net';
import type { Config } from './config.js';

/**
 * Whether the gateway may listen where it is told to. Development defaults
 * (the dev token endpoint, a generated JWT secret, analytics without a token)
 * are safe only while nothing but this machine can connect: on any other
 * address anyone who reaches the port can mint a token for any user.
 */

// ::1 and the IPv4-mapped form of 127.0.0.0/8 (::ffff:127.x.y.z); BlockList
// compares parsed addresses, so every IPv6 spelling of them matches.
const loopbackV6 = new net.BlockList();
loopbackV6.addAddress('::1', 'ipv6');
loopbackV6.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/**
 * True only for hosts that can never be reached from another machine:
 * `localhost`, a dotted-quad 127.0.0.0/8 address, or an IPv6 loopback
 * spelling (optionally in brackets). Everything else counts as exposed:
 * 0.0.0.0, ::, other addresses, hostnames (they resolve elsewhere) and
 * ambiguous numeric spellings such as `127.1` or `2130706433`, which
 * net.isIPv4 does not accept: refusing a safe spelling costs the operator a
 * rename, accepting an unsafe one would expose the platform.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost') return true;
  if (net.isIPv4(h)) return h.split('.')[0] === '127';
  // Brackets belong to IPv6 literals only.
  const bare = h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
  if (net.isIPv6(bare)) {
    try {
      return loopbackV6.check(bare, 'ipv6');
    } catch {
      return false; // a spelling BlockList cannot parse is not known to be loopback
    }
  }
  return false;
}

export interface ExposureInput {
  host: string;
  devTokens: boolean;
  /** AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY is set (otherwise a dev secret is generated). */
  hasProductionKey: boolean;
  hasAnalyticsAdminToken: boolean;
  allowInsecureBind: boolean;
}

export type ExposureDecision =
  | { action: 'ok' }
  /** Exposed with development defaults, accepted because the operator said so. */
  | { action: 'warn'; reasons: string[]; message: string }
  | { action: 'refuse'; reasons: string[]; message: string };

export function exposureInput(config: Config): ExposureInput {
  return {
    host: config.gateway.host,
    devTokens: config.auth.devTokens,
    hasProductionKey: Boolean(config.auth.jwtSecret || config.auth.jwtPublicKey),
    hasAnalyticsAdminToken: Boolean(config.analytics.adminToken),
    allowInsecureBind: config.gateway.allowInsecureBind,
  };
}

/** Pure: the same input always gives the same decision (tests drive it with a table). */
export function decideExposure(input: ExposureInput): ExposureDecision {
  if (isLoopbackHost(input.host)) return { action: 'ok' };
  const reasons: string[] = [];
  const fixes: string[] = [];
  if (!input.hasProductionKey) {
    reasons.push('a generated development JWT secret');
    // With a key configured, dev tokens default to off (config.ts).
    fixes.push('set AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY (and leave AUTH_DEV_TOKENS unset)');
  }
  if (input.devTokens) {
    reasons.push('the dev token endpoint on (anyone can mint a token for any user)');
    if (input.hasProductionKey) fixes.push('unset AUTH_DEV_TOKENS');
  }
  // Analytics is open only while dev tokens are on and no admin token is set (analytics-routes.ts),
  // so turning dev tokens off closes it too: no fix of its own.
  if (input.devTokens && !input.hasAnalyticsAdminToken) reasons.push('analytics open without ANALYTICS_ADMIN_TOKEN');
  if (reasons.length === 0) return { action: 'ok' };
  const what = `HOST=${JSON.stringify(input.host)} is not a loopback address and the gateway runs with ${reasons.join(', ')}`;
  if (input.allowInsecureBind) {
    return { action: 'warn', reasons, message: `${what}; started anyway because PARLEY_ALLOW_INSECURE_BIND=true` };
  }
  return {
    action: 'refuse',
    reasons,
    message: `refusing to start: ${what}; ${fixes.join(', ')}, or listen on HOST=127.0.0.1, or set PARLEY_ALLOW_INSECURE_BIND=true to accept the exposure`,
  };
}

/** Thrown where the gateway would start exposed with development defaults; its message is the one line to log. */
export class ExposureRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExposureRefused';
  }
}

/** Throws ExposureRefused when the decision is to refuse; returns the decision otherwise (the caller logs a warning). */
export function enforceExposure(config: Config): ExposureDecision {
  const decision = decideExposure(exposureInput(config));
  if (decision.action === 'refuse') throw new ExposureRefused(decision.message);
  return decision;
}
