import { AppError, toAppError } from '../../runtime/errors.js';
import type { Logger } from '../../observability/logger.js';
import type { HttpMetrics } from './http-metrics.js';
import { corsHeaders, preflightHeaders, type OriginPolicy } from './origin-policy.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from '../uws.js';

/** What a handler sees of a request: copied out of uWebSockets' request object, which is only valid synchronously. */
export interface HttpContext {
  method: string;
  path: string;
  query: URLSearchParams;
  params: string[];
  authorization: string;
  contentType: string;
  /** The Host header (the page's CSP names the WebSocket address by it). */
  host: string;
  requestId: string;
  /** The router's logger with this request's id on every line. */
  log: Logger;
  /** Raw body (only read for methods that carry one). */
  body: Buffer;
}

export interface HttpResult {
  status: number;
  /** JSON-serialised, unless it is raw bytes (then `headers` must name the content type). */
  body: unknown;
  headers?: Record<string, string>;
}

export interface RouteOptions {
  /** Overrides the router's body limit (uploads). */
  maxBodyBytes?: number;
}

export type HttpHandler = (ctx: HttpContext) => Promise<HttpResult>;

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

let requestCounter = 0;

/**
 * Minimal JSON routing over uWebSockets' HTTP: copies what it needs from the
 * request, reads the body with a size limit, runs the handler, and maps any
 * error to the standard error body with its stable code.
 */
export class HttpRouter {
  constructor(
    private readonly app: TemplatedApp,
    private readonly log: Logger,
    private readonly maxBodyBytes: number,
    private readonly metrics?: HttpMetrics,
    /** Browser origins allowed (CORS); none given: no cross-origin request is answered with CORS headers. */
    private readonly origins?: OriginPolicy,
  ) {}

  /** Every route registered, in order: what the API serves (the fuzz test drives each of them). */
  readonly routes: { method: 'get' | 'post'; pattern: string }[] = [];

  route(method: 'get' | 'post', pattern: string, handler: HttpHandler, options: RouteOptions = {}): void {
    const limit = options.maxBodyBytes ?? this.maxBodyBytes;
    this.routes.push({ method, pattern });
    this.app[method](pattern, (res, req) => this.handle(res, req, handler, pattern, limit));
  }

  /**
   * CORS preflights: an allowed origin hears which methods and headers it may
   * use; any other gets a typed 403 (and no CORS headers, so the browser stops there).
   */
  preflight(): void {
    this.app.options('/*', (res, req) => {
      const origin = req.getHeader('origin');
      const allowed = origin !== '' && this.origins?.allows(origin, req.getHeader('host')) === true;
      const requestId = requestIdFrom(req.getHeader('x-request-id'));
      if (!allowed) {
        this.metrics?.error('forbidden');
        const err = new AppError(
          'forbidden',
          origin ? 'this origin may not use the API (CORS_ALLOWED_ORIGINS)' : 'OPTIONS is only answered as a CORS preflight',
        );
        writeResult(res, { status: err.status, body: err.toBody() }, requestId);
        return;
      }
      res.cork(() => {
        res.writeStatus('204 No Content').writeHeader('x-request-id', requestId);
        for (const [k, v] of Object.entries(preflightHeaders(origin))) res.writeHeader(k, v);
        res.endWithoutBody();
      });
    });
  }

  /** Answers every unmatched route with a typed 404. */
  fallback(): void {
    this.app.any('/*', (res, req) => {
      const body = JSON.stringify(new AppError('not_found', 'no such route').toBody());
      // A HEAD answer has headers only: bytes after them would be read as the start of the next response.
      if (req.getMethod() === 'head') {
        res.writeStatus('404 Not Found').writeHeader('content-type', 'application/json; charset=utf-8').end();
        return;
      }
      res.writeStatus('404 Not Found').writeHeader('content-type', 'application/json; charset=utf-8').end(body);
    });
  }

  private handle(res: HttpResponse, req: HttpRequest, handler: HttpHandler, pattern: string, maxBodyBytes: number): void {
    // Attached first: whatever happens below, uWebSockets must never see a handler return without one.
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const paramCount = (pattern.match(/:/g) ?? []).length;
    const requestId = requestIdFrom(req.getHeader('x-request-id'));
    const origin = req.getHeader('origin');
    const originAllowed = this.origins ? this.origins.allows(origin, req.getHeader('host')) : true;
    // Only a cross-origin page needs (and gets) the CORS headers; a refused origin gets none.
    const cors = originAllowed && origin && this.origins?.isCrossOrigin(origin, req.getHeader('host')) ? corsHeaders(origin) : undefined;
    const params = Array.from({ length: paramCount }, (_, i) => decodePathSegment(req.getParameter(i) ?? ''));
    const ctx: HttpContext = {
      method: req.getMethod(),
      path: req.getUrl(),
      query: new URLSearchParams(req.getQuery() ?? ''),
      params: params.map((p) => p ?? ''),
      authorization: req.getHeader('authorization'),
      contentType: req.getHeader('content-type'),
      host: req.getHeader('host'),
      requestId,
      body: Buffer.alloc(0),
      log: this.log.child({ requestId }),
    };
    const started = performance.now();
    let answered = false;
    const finish = (result: HttpResult) => {
      if (answered) return;
      answered = true;
      if (!aborted) {
        try {
          res.cork(() => writeResult(res, cors ? { ...result, headers: { ...result.headers, ...cors } } : result, ctx.requestId));
        } catch (err) {
          // The connection went away between the check and the write: nothing to answer.
          ctx.log.debug('http response not written', { err });
        }
      }
      const seconds = (performance.now() - started) / 1000;
      this.metrics?.observe(pattern, ctx.method, result.status, seconds);
      ctx.log.debug('http request', { method: ctx.method, route: pattern, status: result.status, ms: Math.round(seconds * 1000), aborted });
    };
    const fail = (err: unknown) => {
      const appErr = toAppError(err);
      this.metrics?.error(appErr.code);
      if (appErr.code === 'internal') ctx.log.error('http handler failed', { path: ctx.path, err });
      finish({ status: appErr.status, body: appErr.toBody() });
    };
    const run = () => {
      // Refused before the handler runs: a page from a foreign origin must not cause writes it cannot read the answer to.
      if (!originAllowed) return fail(new AppError('forbidden', 'this origin may not use the API (CORS_ALLOWED_ORIGINS)'));
      // A path segment that is not valid percent-encoding (`%ZZ`) names nothing: the request is malformed.
      if (params.includes(null)) return fail(new AppError('invalid_request', 'the path is not valid percent-encoded UTF-8'));
      // No id or query parameter of the API can contain NUL, and Postgres text cannot hold one: refused here,
      // once, rather than as a database error (500) wherever such a value would reach a query.
      if (params.some((p) => p!.includes('\u0000')) || [...ctx.query].some(([k, v]) => k.includes('\u0000') || v.includes('\u0000'))) {
        return fail(new AppError('invalid_request', 'NUL characters are not allowed in paths or query parameters'));
      }
      let pending: Promise<HttpResult>;
      try {
        pending = handler(ctx);
      } catch (err) {
        return fail(err);
      }
      pending.then(finish, fail);
    };
    if (ctx.method !== 'post') {
      run();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let rejected = false;
    res.onData((chunk, isLast) => {
      if (rejected) return;
      size += chunk.byteLength;
      if (size > maxBodyBytes) {
        rejected = true;
        this.metrics?.error('frame_too_large');
        const err = new AppError('frame_too_large', `request bodies are limited to ${maxBodyBytes} bytes`);
        finish({ status: err.status, body: err.toBody(), headers: { connection: 'close' } });
        return;
      }
      // The chunk's memory is reused after this callback returns: copy it.
      chunks.push(Buffer.from(new Uint8Array(chunk).slice()));
      if (isLast) {
        ctx.body = Buffer.concat(chunks);
        run();
      }
    });
  }
}

/** decodeURIComponent without the URIError: null for malformed escapes or escapes that are not UTF-8. */
export function decodePathSegment(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/** A caller's x-request-id is kept (so a trace spans services) when it is short and printable; otherwise one is made. */
function requestIdFrom(header: string): string {
  if (header && header.length <= 128 && /^[\x21-\x7e]+$/.test(header)) return header;
  return `r${Date.now().toString(36)}${(requestCounter++).toString(36)}`;
}

/** Used when a 429 does not say how long to wait (every limiter in Parley does; this is a floor, not a policy). */
const DEFAULT_RETRY_AFTER_MS = 1000;

/**
 * Every 429 carries `Retry-After` (whole seconds, rounded up, at least 1) and
 * the same wait as `retryAfterMs` in its body, so both plain HTTP clients and
 * Parley clients know when to come back.
 */
export function withRetryAfter(result: HttpResult): HttpResult {
  if (result.status !== 429) return result;
  const body = (result.body && typeof result.body === 'object' && !(result.body instanceof Uint8Array) ? result.body : {}) as { retryAfterMs?: unknown };
  const ms = typeof body.retryAfterMs === 'number' && body.retryAfterMs >= 0 ? body.retryAfterMs : DEFAULT_RETRY_AFTER_MS;
  return {
    ...result,
    body: { ...body, retryAfterMs: ms },
    headers: { ...result.headers, 'retry-after': String(retryAfterSeconds(ms)) },
  };
}

export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/** Writes a result (status, JSON or raw body, headers) on a response that is still open. */
export function writeResult(res: HttpResponse, answer: HttpResult, requestId?: string): void {
  const result = withRetryAfter(answer);
  const raw = result.body instanceof Uint8Array;
  res.writeStatus(`${result.status} ${STATUS_TEXT[result.status] ?? ''}`.trim());
  if (!raw) res.writeHeader('content-type', 'application/json; charset=utf-8');
  if (requestId) res.writeHeader('x-request-id', requestId);
  for (const [k, v] of Object.entries(result.headers ?? {})) res.writeHeader(k, v);
  res.end(raw ? (result.body as Uint8Array) : JSON.stringify(result.body));
}
