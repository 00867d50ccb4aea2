import { errorCatalog, type ErrorBody, type ErrorCode } from '../../contracts/index.js';
import type { ZodError } from 'zod';
import { noteStorageFailure } from '../observability/storage-full.js';

/**
 * The one error type that crosses service boundaries. Handlers throw it (or
 * let lower layers throw it); the edge (WebSocket or HTTP) turns it into an
 * error frame or body with the same stable code.
 */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly retryAfterMs: number | undefined;
  readonly issues: ErrorBody['issues'];

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; retryAfterMs?: number; issues?: ErrorBody['issues'] } = {}) {
    super(message, { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.retryAfterMs = options.retryAfterMs;
    this.issues = options.issues;
  }

  get status(): number {
    return errorCatalog[this.code].status;
  }

  toBody(): ErrorBody {
    const body: ErrorBody = { code: this.code, message: this.message, retryable: errorCatalog[this.code].retryable };
    if (this.retryAfterMs !== undefined) body.retryAfterMs = this.retryAfterMs;
    if (this.issues && this.issues.length > 0) body.issues = this.issues;
    return body;
  }
}

export function isAppError(err: unknown, code?: ErrorCode): err is AppError {
  return err instanceof AppError && (code === undefined || err.code === code);
}

/** Converts a zod failure into an `invalid_*` AppError listing each problem by path. */
export function fromZodError(code: ErrorCode, what: string, err: ZodError): AppError {
  const issues = err.issues.slice(0, 20).map((i) => ({ path: i.path.map(String).join('.') || '(root)', message: i.message }));
  const first = issues[0];
  const summary = first ? `${first.path}: ${first.message}` : 'invalid';
  return new AppError(code, `${what}: ${summary}`, { issues });
}

/** Anything that is not an AppError is an internal error: its details are logged, not sent. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  // A full store (Postgres class 53, JetStream storage, ENOSPC) passes once space returns: retryable, with the reason.
  const full = noteStorageFailure(err);
  if (full) return new AppError('unavailable', `${full.reason}; retry later`, { cause: err });
  return new AppError('internal', 'internal error', { cause: err });
}
