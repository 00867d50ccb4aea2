import { AppError } from '../runtime/errors.js';
import type { Logger } from '../observability/logger.js';
import type { HttpResponse, TemplatedApp, WebSocket, WebSocketBehavior } from './uws.js';

/**
 * uWebSockets calls into JavaScript from C++. An exception thrown out of one
 * of its callbacks becomes an uncaught exception of the whole process, and an
 * HTTP handler that returns without answering (or attaching onAborted) makes
 * uWebSockets abort() the process. One malformed request must never do that.
 *
 * `guardApp` returns the app with every handler registration wrapped: every
 * HTTP method, every WebSocket callback (upgrade, open, message, drain,
 * close, ...), synchronous throws and rejected promises alike. A failure ends
 * that request with a typed 500 `internal` body, or that connection with
 * close code 1011, and is logged; the process keeps serving. Registering
 * through the guarded app is the only way handlers get onto the listener
 * (service.ts), so handlers added later are protected without thinking of it.
 */

/** WebSocket close code for "the server hit an unexpected condition" (RFC 6455); clients reconnect with backoff. */
export const INTERNAL_ERROR_CLOSE_CODE = 1011;

const HTTP_METHODS = new Set(['get', 'post', 'put', 'del', 'patch', 'options', 'head', 'connect', 'trace', 'any']);

export interface GuardHooks {
  /** Called for every failure caught at the boundary (metrics). */
  onError?: (where: string) => void;
}

export function guardApp(app: TemplatedApp, log: Logger, hooks: GuardHooks = {}): TemplatedApp {
  const report = (where: string, err: unknown) => {
    hooks.onError?.(where);
    log.error('unhandled error in a gateway handler', { where, err });
  };
  const proxy: TemplatedApp = new Proxy(app, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof prop === 'string' && HTTP_METHODS.has(prop)) {
        return (pattern: string, handler: (res: HttpResponse, req: never) => unknown) => {
          (target as unknown as Record<string, (p: string, h: unknown) => unknown>)[prop]!(
            pattern,
            guardHttpHandler(handler, (err) => report(`http ${prop} ${pattern}`, err)),
          );
          return proxy;
        };
      }
      if (prop === 'ws') {
        return (pattern: string, behavior: WebSocketBehavior<unknown>) => {
          target.ws(
            pattern,
            guardBehavior(behavior, (where, err) => report(`ws ${where} ${pattern}`, err)),
          );
          return proxy;
        };
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return proxy;
}

const noop = () => undefined;

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/** Wraps one HTTP (or upgrade) handler: a throw or rejection answers 500 `internal` if the response is still open. */
export function guardHttpHandler<A extends unknown[]>(handler: (res: HttpResponse, ...rest: A) => unknown, report: (err: unknown) => void) {
  return (res: HttpResponse, ...rest: A): void => {
    // uWebSockets abort()s the process when a handler returns without answering or attaching onAborted
    // (a C++ check no try/catch can intercept). A no-op handler attached first rules that out; handlers
    // that answer later attach their own, which replaces it.
    res.onAborted(noop);
    try {
      const result = handler(res, ...rest);
      if (isThenable(result)) result.then(undefined, (err: unknown) => failResponse(res, err, report));
    } catch (err) {
      failResponse(res, err, report);
    }
  };
}

function failResponse(res: HttpResponse, err: unknown, report: (err: unknown) => void): void {
  report(err);
  // The handler may already have answered, or the client may have gone: uWebSockets then throws on any access.
  try {
    const body = JSON.stringify(new AppError('internal', 'internal error').toBody());
    res.cork(() => res.writeStatus('500 Internal Server Error').writeHeader('content-type', 'application/json; charset=utf-8').end(body));
  } catch {
    try {
      res.close();
    } catch {
      // Already answered or aborted: nothing left to fail.
    }
  }
}

/** Wraps every callback of a WebSocket behavior; `upgrade` like an HTTP handler, the others by closing that socket. */
function guardBehavior<T>(behavior: WebSocketBehavior<T>, report: (where: string, err: unknown) => void): WebSocketBehavior<T> {
  const guarded: Record<string, unknown> = { ...behavior };
  for (const [key, value] of Object.entries(behavior)) {
    if (typeof value !== 'function') continue;
    if (key === 'upgrade') {
      guarded[key] = guardHttpHandler(value as (res: HttpResponse, ...rest: unknown[]) => unknown, (err) => report(key, err));
      continue;
    }
    const fn = value as (ws: WebSocket<T>, ...rest: unknown[]) => unknown;
    // After `close` the socket must not be touched; every other callback fails its own connection.
    const fail = (ws: WebSocket<T>, err: unknown) => {
      report(key, err);
      if (key !== 'close') endQuietly(ws);
    };
    guarded[key] = (ws: WebSocket<T>, ...rest: unknown[]) => {
      try {
        const result = fn(ws, ...rest);
        if (isThenable(result)) result.then(undefined, (err: unknown) => fail(ws, err));
      } catch (err) {
        fail(ws, err);
      }
    };
  }
  return guarded as WebSocketBehavior<T>;
}

function endQuietly<T>(ws: WebSocket<T>): void {
  try {
    ws.end(INTERNAL_ERROR_CLOSE_CODE, 'internal error; reconnect');
  } catch {
    // Already closed.
  }
}

/**
 * Wraps a timer or event callback: a throw is logged and dropped instead of
 * becoming an uncaught exception of the process.
 */
export function guarded<A extends unknown[]>(log: Logger, where: string, fn: (...args: A) => unknown): (...args: A) => void {
  return (...args: A) => {
    try {
      const result = fn(...args);
      if (isThenable(result)) result.then(undefined, (err: unknown) => log.error('unhandled error in a gateway callback', { where, err }));
    } catch (err) {
      log.error('unhandled error in a gateway callback', { where, err });
    }
  };
}
