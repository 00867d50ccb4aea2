import { AppError, toAppError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from '../uws.js';

/** What a handler sees of a request: copied out of uWebSockets' request object, which is only valid synchronously. */
export interface HttpContext {
  method: string;
  path: string;
  query: URLSearchParams;
  params: string[];
  authorization: string;
  requestId: string;
  /** Raw body (only read for methods that carry one). */
  body: Buffer;
}

export interface HttpResult {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
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
  ) {}

  route(method: 'get' | 'post', pattern: string, handler: HttpHandler): void {
    this.app[method](pattern, (res, req) => this.handle(res, req, handler, pattern));
  }

  /** Answers every unmatched route with a typed 404. */
  fallback(): void {
    this.app.any('/*', (res) => {
      let aborted = false;
      res.onAborted(() => (aborted = true));
      if (!aborted) send(res, { status: 404, body: new AppError('not_found', 'no such route').toBody() });
    });
  }

  private handle(res: HttpResponse, req: HttpRequest, handler: HttpHandler, pattern: string): void {
    const paramCount = (pattern.match(/:/g) ?? []).length;
    const ctx: HttpContext = {
      method: req.getMethod(),
      path: req.getUrl(),
      query: new URLSearchParams(req.getQuery() ?? ''),
      params: Array.from({ length: paramCount }, (_, i) => decodeURIComponent(req.getParameter(i) ?? '')),
      authorization: req.getHeader('authorization'),
      requestId: req.getHeader('x-request-id') || `r${Date.now().toString(36)}${(requestCounter++).toString(36)}`,
      body: Buffer.alloc(0),
    };
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const finish = (result: HttpResult) => {
      if (!aborted) res.cork(() => send(res, result, ctx.requestId));
    };
    const run = () =>
      handler(ctx).then(finish, (err) => {
        const appErr = toAppError(err);
        if (appErr.code === 'internal') this.log.error('http handler failed', { path: ctx.path, requestId: ctx.requestId, err });
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
      if (size > this.maxBodyBytes) {
        rejected = true;
        const err = new AppError('frame_too_large', `request bodies are limited to ${this.maxBodyBytes} bytes`);
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

function send(res: HttpResponse, result: HttpResult, requestId?: string): void {
  res.writeStatus(`${result.status} ${STATUS_TEXT[result.status] ?? ''}`.trim());
  res.writeHeader('content-type', 'application/json; charset=utf-8');
  if (requestId) res.writeHeader('x-request-id', requestId);
  for (const [k, v] of Object.entries(result.headers ?? {})) res.writeHeader(k, v);
  res.end(JSON.stringify(result.body));
}
