import { type AppError, isAppError } from '../../runtime/errors.js';

/**
 * Failures answered the way a ClickHouse server answers them over HTTP, so
 * clients parse them as their own: body `Code: N. DB::Exception: message.
 * (TYPE) (version v)`, header X-ClickHouse-Exception-Code, and the HTTP
 * status ClickHouse uses for that code.
 */
export class ClickHouseFailure extends Error {
  constructor(
    readonly code: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
    this.name = 'ClickHouseFailure';
  }
}

export const CH = {
  BAD_ARGUMENTS: [36, 'BAD_ARGUMENTS'],
  SYNTAX_ERROR: [62, 'SYNTAX_ERROR'],
  UNKNOWN_FORMAT: [73, 'UNKNOWN_FORMAT'],
  UNKNOWN_DATABASE: [81, 'UNKNOWN_DATABASE'],
  TIMEOUT_EXCEEDED: [159, 'TIMEOUT_EXCEEDED'],
  READONLY: [164, 'READONLY'],
  TOO_MANY_SIMULTANEOUS_QUERIES: [202, 'TOO_MANY_SIMULTANEOUS_QUERIES'],
  ACCESS_DENIED: [497, 'ACCESS_DENIED'],
  AUTHENTICATION_FAILED: [516, 'AUTHENTICATION_FAILED'],
  NOT_IMPLEMENTED: [48, 'NOT_IMPLEMENTED'],
  BAD_QUERY_PARAMETER: [457, 'BAD_QUERY_PARAMETER'],
} as const satisfies Record<string, readonly [number, string]>;

export function failure([code, type]: readonly [number, string], message: string): ClickHouseFailure {
  return new ClickHouseFailure(code, type, message);
}

/** ClickHouse's HTTP status per exception code (the ones this endpoint can answer); 500 for the rest. */
const STATUS: Record<number, number> = {
  516: 401,
  192: 401,
  193: 401,
  194: 401,
  164: 403,
  497: 403,
  60: 404,
  81: 404,
  46: 404,
  47: 404,
  16: 404,
  36: 400,
  62: 400,
  73: 400,
  115: 400,
  456: 400,
  457: 400,
  6: 400,
  27: 400,
  53: 400,
  43: 400,
  42: 400,
  386: 400,
  202: 503,
  48: 501,
};

export function httpStatusOf(code: number): number {
  return STATUS[code] ?? 500;
}

/** `{ code, type }` of the engine's own exception (ClickHouseError from the client), if `err` is one. */
function engineError(err: unknown): { code: number; type: string; message: string } | null {
  const e = err as { code?: unknown; type?: unknown; message?: unknown };
  if (typeof e?.message !== 'string') return null;
  const code = Number(e.code);
  if (!Number.isInteger(code) || code <= 0 || typeof e.type !== 'string' || !/^[A-Z0-9_]+$/.test(e.type)) return null;
  return { code, type: e.type, message: e.message };
}

/**
 * Any failure of a request as ClickHouse would name it. A refusal of the
 * guard (`sql_rejected`) is ACCESS_DENIED, unless the engine itself refused
 * to parse the text (then its own code, e.g. 62 SYNTAX_ERROR); an error
 * while running is the engine's own; anything else is an internal error.
 */
export function toClickHouseFailure(err: unknown): ClickHouseFailure {
  if (err instanceof ClickHouseFailure) return err;
  if (isAppError(err, 'sql_rejected')) {
    const cause = engineError((err as AppError).cause);
    if (cause) return new ClickHouseFailure(cause.code, cause.type, err.message);
    return failure(CH.ACCESS_DENIED, `${err.message} (analysts' SQL is read-only and confined to the analytics database; docs/analytics.md)`);
  }
  if (isAppError(err, 'sql_failed')) {
    const cause = engineError((err as AppError).cause);
    if (cause) return new ClickHouseFailure(cause.code, cause.type, cause.message);
  }
  const direct = engineError(err);
  if (direct) return new ClickHouseFailure(direct.code, direct.type, direct.message);
  return new ClickHouseFailure(1001, 'STD_EXCEPTION', 'internal error (logged by the server)');
}

/** The body ClickHouse sends: one line, the message without a trailing `(TYPE)` it may already carry. */
export function failureBody(f: ClickHouseFailure, version: string): string {
  const message = f.message
    .replace(/^Code: \d+\. DB::Exception: /, '')
    .replace(/\s*\([A-Z0-9_]+\)\s*(\(version [^)]*\))?\s*$/, '')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 4000);
  return `Code: ${f.code}. DB::Exception: ${message}. (${f.type}) (version ${version})\n`;
}
