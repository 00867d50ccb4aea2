/**
 * Token transport for browsers: `new WebSocket(url, ['parley.v1', 'parley.bearer.' + token])`.
 * A JWT is base64url segments joined by dots, all valid in a subprotocol name (an
 * HTTP token), so it travels unchanged.
 */
export const PROTOCOL_NAME = 'parley.v1';
export const BEARER_PROTOCOL_PREFIX = 'parley.bearer.';

/**
 * The token carried in Sec-WebSocket-Protocol, and the protocol to accept in
 * the answer (`parley.v1` when offered, as a browser requires one of its
 * offers echoed; otherwise none). Null when no bearer protocol was offered.
 */
export function bearerFromProtocols(header: string): { token: string; accept: string } | null {
  const offers = header
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const bearer = offers.find((p) => p.startsWith(BEARER_PROTOCOL_PREFIX));
  if (!bearer) return null;
  return { token: bearer.slice(BEARER_PROTOCOL_PREFIX.length), accept: offers.includes(PROTOCOL_NAME) ? PROTOCOL_NAME : '' };
}
