import uWS from 'uWebSockets.js';

export type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, WebSocketBehavior, us_listen_socket } from 'uWebSockets.js';

/**
 * The uWebSockets.js package silently falls back to a slow pure-JavaScript
 * implementation when its native binary does not load. The gateway's
 * performance targets assume the native build, so it refuses to start on
 * the fallback instead of degrading silently.
 */
export function loadNativeUws(): typeof uWS {
  const native = typeof uWS.App === 'function' && /\[native code\]/.test(Function.prototype.toString.call(uWS.App));
  if (!native) {
    throw new Error(
      'uWebSockets.js loaded its JavaScript fallback instead of the native binary ' +
        `(node ${process.version}, ABI ${process.versions.modules}, ${process.platform}-${process.arch}); refusing to start`,
    );
  }
  return uWS;
}

export const uws = uWS;
