import { z } from 'zod';

/**
 * Stable error codes shared by WebSocket error frames and HTTP error bodies.
 * Clients branch on `code`, never on `message`. `retryable` says whether
 * sending the same request again can succeed; `status` is the HTTP status used
 * when the error is answered over HTTP.
 */
export const errorCatalog = {
  invalid_json: { status: 400, retryable: false, summary: 'The frame or body is not valid JSON.' },
  invalid_frame: {
    status: 400,
    retryable: false,
    summary: 'The frame does not match its schema (wrong types, missing or unknown fields, text policy violations); `issues` names each field.',
  },
  unknown_frame_type: { status: 400, retryable: false, summary: "The frame's `t` is not a frame type this server accepts." },
  frame_too_large: { status: 413, retryable: false, summary: 'The frame or body exceeds the size limit.' },
  binary_not_supported: { status: 400, retryable: false, summary: 'Binary WebSocket frames are not part of the protocol.' },
  invalid_request: { status: 400, retryable: false, summary: 'The HTTP request is malformed (bad query, path or body).' },
  unauthenticated: { status: 401, retryable: false, summary: 'No token, or the token is invalid or expired.' },
  forbidden: { status: 403, retryable: false, summary: 'The authenticated user may not do this.' },
  not_member: { status: 403, retryable: false, summary: 'The user is not a member of the conversation.' },
  blocked: { status: 403, retryable: false, summary: 'A block between the two users stops this (1:1 messages to or from a blocked user).' },
  window_expired: { status: 403, retryable: false, summary: 'The time allowed for this action has passed (recall after the recall window).' },
  target_not_allowed: {
    status: 422,
    retryable: false,
    summary:
      'The server will not send to this URL: https only (unless the operator allows http), no credentials in it, and no loopback, private, link-local, metadata or other internal address or name (docs/security.md).',
  },
  limit_exceeded: { status: 422, retryable: false, summary: 'A documented limit would be exceeded (distinct reactions per message, members per command).' },
  not_found: { status: 404, retryable: false, summary: 'No such conversation, message, attachment (an id no upload answered) or route.' },
  conflict: { status: 409, retryable: true, summary: 'A concurrent change won; retrying re-evaluates against the new state.' },
  rate_limited: { status: 429, retryable: true, summary: 'Too many requests; retry after `retryAfterMs`.' },
  too_many_connections: {
    status: 429,
    retryable: true,
    summary:
      'The user already has MAX_CONNECTIONS_PER_USER WebSocket connections open on this gateway (refused at the upgrade); close one, or retry after `retryAfterMs`.',
  },
  unavailable: { status: 503, retryable: true, summary: 'A dependency (NATS, Postgres, ClickHouse) is unavailable.' },
  timeout: { status: 504, retryable: true, summary: 'The operation did not finish in time; its outcome is unknown, retry with the same ids.' },
  internal: { status: 500, retryable: true, summary: 'An unexpected server error; it has been logged.' },
  sql_rejected: {
    status: 400,
    retryable: false,
    summary:
      'Analytics SQL must be one read-only statement (SELECT with WITH/UNION, EXPLAIN, DESCRIBE TABLE, SHOW TABLES) on the analytics tables, using only allowed functions, without SETTINGS, FORMAT or INTO OUTFILE (docs/analytics.md); the message says what was refused.',
  },
  sql_failed: {
    status: 400,
    retryable: false,
    summary: 'ClickHouse could not run the analytics query (syntax error, unknown table or column, a limit reached); the message says why.',
  },
} as const satisfies Record<string, { status: number; retryable: boolean; summary: string }>;

export type ErrorCode = keyof typeof errorCatalog;
export const ErrorCode = z.enum(Object.keys(errorCatalog) as [ErrorCode, ...ErrorCode[]]);

/** The body of every HTTP error response and the payload of every WebSocket error frame. */
export const ErrorBody = z.strictObject({
  code: ErrorCode,
  message: z.string(),
  retryable: z.boolean(),
  retryAfterMs: z.number().int().nonnegative().optional(),
  /** Field-level problems for validation errors: path and message. */
  issues: z.array(z.strictObject({ path: z.string(), message: z.string() })).optional(),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

export { CloseCode, shouldReconnect, type CloseCodeName } from './close-codes.js';
