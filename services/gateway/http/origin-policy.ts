/**
 * Which browser origins may use the API: one decision shared by CORS (HTTP)
 * and the WebSocket upgrade, so a page refused one is refused the other.
 *
 * Browsers attach `Origin` to every cross-origin request and to every
 * WebSocket handshake; a page cannot forge it. Non-browser clients (SDK on
 * Node, terminal client, curl) send none and are not an Origin question: they
 * are allowed, and authenticate like everyone else. The gateway's own pages
 * (served from the same host) are always allowed.
 */
export interface OriginPolicyOptions {
  /** Explicit allow-list (`*`: any origin); null: the default for the mode. */
  allowedOrigins: string[] | null;
  /** Development (dev tokens on): by default any loopback origin, whatever its port. */
  devMode: boolean;
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

export class OriginPolicy {
  private readonly any: boolean;
  private readonly exact: ReadonlySet<string>;
  private readonly loopback: boolean;

  constructor(options: OriginPolicyOptions) {
    const list = (options.allowedOrigins ?? []).map((o) => normalizeOrigin(o)).filter((o): o is string => o !== null);
    this.any = (options.allowedOrigins ?? []).includes('*');
    this.exact = new Set(list);
    this.loopback = options.allowedOrigins === null && options.devMode;
  }

  /**
   * True when a request carrying `origin` (the header, '' when absent) to the
   * gateway reached as `host` (the Host header) may proceed.
   */
  allows(origin: string, host: string): boolean {
    if (origin === '') return true;
    // Sandboxed frames, file:// pages and privacy redirects send the opaque origin "null": never trusted.
    const normalized = normalizeOrigin(origin);
    if (normalized === null) return false;
    if (this.any) return true;
    if (isSameOrigin(normalized, host)) return true;
    if (this.exact.has(normalized)) return true;
    if (this.loopback) return LOOPBACK_HOSTS.has(new URL(normalized).hostname);
    return false;
  }

  /** True when `origin` is cross-origin for `host` (CORS headers are only needed then). */
  isCrossOrigin(origin: string, host: string): boolean {
    const normalized = normalizeOrigin(origin);
    return normalized !== null && !isSameOrigin(normalized, host);
  }
}

/** `scheme://host[:port]` lower-cased with the default port dropped; null for anything that is not an http(s) origin. */
export function normalizeOrigin(origin: string): string | null {
  if (origin.length > 300) return null;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  // An origin is exactly scheme, host and port: a path, credentials, query or fragment means it is not one.
  if (url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '')) return null;
  if (!origin.match(/^https?:\/\/[^/]+\/?$/i)) return null;
  return url.origin;
}

/**
 * The page came from this gateway: its origin's host (and port) is the Host
 * the request was sent to. Either scheme counts, since TLS may end at a proxy
 * in front of the gateway.
 */
function isSameOrigin(normalizedOrigin: string, host: string): boolean {
  if (!host) return false;
  const own = [normalizeOrigin(`http://${host}`), normalizeOrigin(`https://${host}`)];
  return own.includes(normalizedOrigin);
}

/** Headers a cross-origin answer carries so the browser lets the page read it. */
export function corsHeaders(origin: string): Record<string, string> {
  return {
    'access-control-allow-origin': origin,
    // The answer depends on Origin: caches must keep one copy per origin.
    vary: 'Origin',
    'access-control-expose-headers': 'x-request-id, retry-after, content-disposition',
  };
}

/** How long a browser may reuse a preflight answer. */
export const PREFLIGHT_MAX_AGE_SECONDS = 600;

export function preflightHeaders(origin: string): Record<string, string> {
  return {
    ...corsHeaders(origin),
    'access-control-allow-methods': 'GET, POST, OPTIONS',
    'access-control-allow-headers': 'authorization, content-type, x-request-id',
    'access-control-max-age': String(PREFLIGHT_MAX_AGE_SECONDS),
  };
}
