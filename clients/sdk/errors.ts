import type { ErrorBody } from '../../contracts/index.js';

/** A command the server refused, or that could not be completed; `code` is the stable error code. */
export class ParleyError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  constructor(body: Pick<ErrorBody, 'code' | 'message' | 'retryable'> & { retryAfterMs?: number | undefined }) {
    super(body.message);
    this.name = 'ParleyError';
    this.code = body.code;
    this.retryable = body.retryable;
    this.retryAfterMs = body.retryAfterMs;
  }
}
