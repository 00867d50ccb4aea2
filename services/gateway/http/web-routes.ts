import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppError } from '../../runtime/errors.js';
import type { Logger } from '../../observability/logger.js';
import type { HttpContext, HttpResult, HttpRouter } from './router.js';

/**
 * The web client (clients/web), served by the gateway at `/`. It is built
 * from source with esbuild, in memory, on the first request for it: nothing
 * built is committed or written, and a gateway that never serves a page never
 * pays for the build. A restart picks up changed sources.
 */
export interface WebAssets {
  html: Buffer;
  js: Buffer;
  css: Buffer;
  /** Content hash of the scripts and styles: their URLs carry it, so they can be cached for good. */
  version: string;
}

/** The nearest directory upwards with a package.json: the project, from the sources and from dist/ alike. */
export function projectDir(): string {
  const start = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return start;
  }
}

export const WEB_SOURCE_DIR = path.join(projectDir(), 'clients', 'web');

/** Builds the web client in memory (esbuild bundles the TypeScript app and the SDK it uses). */
export async function buildWebAssets(sourceDir = WEB_SOURCE_DIR): Promise<WebAssets> {
  const entry = path.join(sourceDir, 'src', 'main.ts');
  // A deployment may leave the client out (an API-only gateway): that is a 404, not a failure.
  if (!fs.existsSync(entry)) throw new AppError('not_found', 'the web client is not installed with this gateway (clients/web is missing)');
  // Loaded only when a page is asked for: the gateway starts without it, and a production image may leave it out.
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    legalComments: 'none',
    outfile: 'app.js',
    logLevel: 'silent',
  });
  const js = Buffer.from(result.outputFiles[0]!.contents);
  const css = fs.readFileSync(path.join(sourceDir, 'src', 'app.css'));
  const version = createHash('sha256').update(js).update(css).digest('hex').slice(0, 16);
  const html = Buffer.from(fs.readFileSync(path.join(sourceDir, 'index.html'), 'utf8').replaceAll('{{version}}', version));
  return { html, js, css, version };
}

let cached: Promise<WebAssets> | null = null;

/** One build per process, shared by every gateway in it. */
function assets(log: Logger): Promise<WebAssets> {
  if (!cached) {
    const started = performance.now();
    cached = buildWebAssets();
    cached.then(
      (a) => log.info('web client built', { ms: Math.round(performance.now() - started), bytes: a.js.byteLength + a.css.byteLength, version: a.version }),
      (err) => {
        // Missing sources stay missing until a restart (logged once); a failed build is retried on the next request.
        if (err instanceof AppError) log.info('web client not served', { reason: err.message });
        else {
          log.error('web client build failed', { err });
          cached = null;
        }
      },
    );
  }
  return cached;
}

/** A Host header fit to repeat in the page's CSP (anything else leaves WebSockets to `'self'` alone). */
function safeHost(host: string): string | null {
  return /^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$/.test(host) ? host : null;
}

/**
 * Only this origin: scripts and styles from the gateway, images from it or
 * from blob: (attachment previews are fetched with the token and shown as
 * blobs), WebSocket and fetch to the same host. No inline script or style,
 * no frames, no plugins, no foreign form targets.
 */
export function pageCsp(host: string): string {
  const h = safeHost(host);
  const connect = ["'self'", ...(h ? [`ws://${h}`, `wss://${h}`] : [])].join(' ');
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob:",
    `connect-src ${connect}`,
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "object-src 'none'",
  ].join('; ');
}

const COMMON_HEADERS = { 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' };

export function registerWebRoutes(router: HttpRouter, log: Logger): void {
  const load = () =>
    assets(log).catch((err) => {
      throw err instanceof AppError ? err : new AppError('unavailable', 'the web client could not be built; see the gateway log');
    });
  const page = async (ctx: HttpContext): Promise<HttpResult> => {
    const a = await load();
    return {
      status: 200,
      body: a.html,
      headers: {
        'content-type': 'text/html; charset=utf-8',
        // Always revalidated: it names the current script and style versions.
        'cache-control': 'no-cache',
        'content-security-policy': pageCsp(ctx.host),
        'x-frame-options': 'DENY',
        ...COMMON_HEADERS,
      },
    };
  };
  const asset =
    (pick: (a: WebAssets) => Buffer, contentType: string) =>
    async (ctx: HttpContext): Promise<HttpResult> => {
      const a = await load();
      // The page asks for ?v=<hash>: that exact content never changes, so it may be cached for good.
      const current = ctx.query.get('v') === a.version;
      return {
        status: 200,
        body: pick(a),
        headers: { 'content-type': contentType, 'cache-control': current ? 'public, max-age=31536000, immutable' : 'no-cache', ...COMMON_HEADERS },
      };
    };
  router.route('get', '/', page);
  router.route('get', '/index.html', page);
  router.route(
    'get',
    '/app.js',
    asset((a) => a.js, 'text/javascript; charset=utf-8'),
  );
  router.route(
    'get',
    '/app.css',
    asset((a) => a.css, 'text/css; charset=utf-8'),
  );
}
