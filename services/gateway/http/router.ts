import { AppError, toAppError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { HttpMetrics } from './http-metrics.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from '../uws.js';

/** What a handler sees of a request: copied out of uWebSockets' request object, which is only valid synchronously. */
export interface HttpContext {
  method: string;
  path: string;
  query: URLSearchParams;
  params: string[];
  authorization: string;
  contentType: string;
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
  ) {}

  route(method: 'get' | 'post', pattern: string, handler: HttpHandler, options: RouteOptions = {}): void {
    const limit = options.maxBodyBytes ?? this.maxBodyBytes;
    this.app[method](pattern, (res, req) => this.handle(res, req, handler, pattern, limit));
  }

  /** Answers every unmatched route with a typed 404. */
  fallback(): void {
    this.app.any('/*', (res) => {
      let aborted = false;
      res.onAborted(() => (aborted = true));
      if (!aborted) send(res, { status: 404, body: new AppError('not_found', 'no such route').toBody() });
    });
  }

  private handle(res: HttpResponse, req: HttpRequest, handler: HttpHandler, pattern: string, maxBodyBytes: number): void {
    const paramCount = (pattern.match(/:/g) ?? []).length;
    const requestId = requestIdFrom(req.getHeader('x-request-id'));
    const ctx: HttpContext = {
      method: req.getMethod(),
      path: req.getUrl(),
      query: new URLSearchParams(req.getQuery() ?? ''),
      params: Array.from({ length: paramCount }, (_, i) => decodeURIComponent(req.getParameter(i) ?? '')),
      authorization: req.getHeader('authorization'),
      contentType: req.getHeader('content-type'),
      requestId,
      body: Buffer.alloc(0),
      log: this.log.child({ requestId }),
    };
    const started = performance.now();
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const finish = (result: HttpResult) => {
      if (!aborted) res.cork(() => send(res, result, ctx.requestId));
      const seconds = (performance.now() - started) / 1000;
      this.metrics?.observe(pattern, ctx.method, result.status, seconds);
      ctx.log.debug('http request', { method: ctx.method, route: pattern, status: result.status, ms: Math.round(seconds * 1000), aborted });
    };
    const run = () =>
      handler(ctx).then(finish, (err) => {
        const appErr = toAppError(err);
        this.metrics?.error(appErr.code);
        if (appErr.code === 'internal') ctx.log.error('http handler failed', { path: ctx.path, err });
        finish({ status: appErr.status, body: appErr.toBody() });
      });
    if (ctx.method !== 'post') {
      void run();
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
        void run();
      }
    });
  }
}

/** A caller's x-request-id is kept (so a trace spans services) when it is short and printable; otherwise one is made. */
function requestIdFrom(header: string): string {
  if (header && header.length <= 128 && /^[\x21-\x7e]+$/.test(header)) return header;
  return `r${Date.now().toString(36)}${(requestCounter++).toString(36)}`;
}

function send(res: HttpResponse, result: HttpResult, requestId?: string): void {
  const raw = result.body instanceof Uint8Array;
  res.writeStatus(`${result.status} ${STATUS_TEXT[result.status] ?? ''}`.trim());
  if (!raw) res.writeHeader('content-type', 'application/json; charset=utf-8');
  if (requestId) res.writeHeader('x-request-id', requestId);
  for (const [k, v] of Object.entries(result.headers ?? {})) res.writeHeader(k, v);
  res.end(raw ? (result.body as Uint8Array) : JSON.stringify(result.body));
}
