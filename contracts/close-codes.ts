// Kept free of zod: the SDK imports these in browser bundles.

/**
 * WebSocket close codes. 3000-3499: the client should reconnect (with backoff)
 * and resume from its position. 3500-3999: reconnecting with the same
 * credentials will fail the same way; do not retry automatically.
 * Standard codes the server may also use: 1000 normal, 1001 going away,
 * 1009 message too big (frames over the hard limit), 1007 invalid UTF-8,
 * 1011 internal error (a bug failed this one connection; reconnect with backoff).
 */
export const CloseCode = {
  /** The gateway is shutting down or restarting. Reconnect elsewhere. */
  serverShutdown: 3000,
  /** The client did not read fast enough; its outbound buffer overflowed. Reconnect and resume. */
  slowReader: 3001,
  /** No frame or pong within the heartbeat interval. Reconnect and resume. */
  heartbeatTimeout: 3002,
  /** The token expired while connected. Get a fresh token, then reconnect. */
  tokenExpired: 3003,
  /** The token is invalid. Do not reconnect with it. */
  unauthenticated: 3500,
  /** Too many invalid frames: the client is broken. Do not reconnect automatically. */
  policyViolation: 3501,
} as const;
export type CloseCodeName = keyof typeof CloseCode;

export function shouldReconnect(closeCode: number): boolean {
  return closeCode < 3500 || closeCode > 3999;
}
