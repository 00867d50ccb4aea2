import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { checkTargetUrl, guardedLookup, hostOf, TargetRefusedError, type LookupAll, type TargetPolicy } from '../../outbound/target-policy.js';

/** What came back: an HTTP status, or nothing a remote party could show (with the details for the server log). */
export type PostResult = { status: number } | { unreachable: true; detail: string; refused: boolean };

export interface PostRequest {
  headers: Record<string, string>;
  body: string | Buffer;
  timeoutMs: number;
}

/** Response bytes read (and discarded) so the connection can be reused; a longer body closes it. */
const MAX_DRAIN_BYTES = 64 * 1024;

/**
 * POSTs to user-given URLs under the target policy (services/outbound/target-policy.ts):
 * the URL is checked again before every request (a channel registered
 * under another policy, or before this check existed, is caught here), and
 * names are resolved by the guarded lookup, whose checked addresses are the
 * ones connected to. Redirects are never followed: node's http client does
 * not follow them, and a 3xx is the answer. The agents are this client's
 * own, so a pooled connection is always one made under this policy.
 */
export class TargetClient {
  private readonly lookup: LookupFunction;
  private readonly agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };

  /** `resolve` replaces the system resolver (tests resolve made-up names to a local receiver with it). */
  constructor(
    private readonly policy: TargetPolicy,
    resolve?: LookupAll,
  ) {
    this.lookup = guardedLookup(policy, resolve);
  }

  post(rawUrl: string, req: PostRequest): Promise<PostResult> {
    let url: URL;
    try {
      url = checkTargetUrl(rawUrl, this.policy);
    } catch (err) {
      return Promise.resolve(unreachable(err));
    }
    const secure = url.protocol === 'https:';
    return new Promise((resolve) => {
      let status: number | undefined;
      let settled = false;
      const done = (r: PostResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(r);
      };
      const timer = setTimeout(() => request?.destroy(new Error(`no answer within ${req.timeoutMs} ms`)), req.timeoutMs);
      let request: http.ClientRequest | undefined;
      try {
        request = (secure ? https : http).request(
          {
            protocol: url.protocol,
            hostname: hostOf(url),
            port: url.port || undefined,
            path: `${url.pathname}${url.search}`,
            method: 'POST',
            headers: { ...req.headers, 'content-length': String(Buffer.byteLength(req.body)) },
            agent: secure ? this.agents.https : this.agents.http,
            lookup: this.lookup,
          },
          (res) => {
            status = res.statusCode ?? 0;
            let read = 0;
            res.on('data', (chunk: Buffer) => {
              read += chunk.length;
              if (read > MAX_DRAIN_BYTES) res.destroy();
            });
            // The status is the answer; a body cut short (or too long) does not change it.
            res.on('end', () => done({ status: status! }));
            res.on('close', () => done({ status: status! }));
            res.on('error', () => done({ status: status! }));
          },
        );
      } catch (err) {
        // Invalid header values and the like throw synchronously.
        done(unreachable(err));
        return;
      }
      request.on('error', (err) => done(status === undefined ? unreachable(err) : { status }));
      request.end(req.body);
    });
  }

  /** Closes pooled connections. */
  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }
}

function unreachable(err: unknown): PostResult {
  if (err instanceof TargetRefusedError) return { unreachable: true, refused: true, detail: err.message };
  const e = err as NodeJS.ErrnoException;
  return { unreachable: true, refused: false, detail: [e.code, e.message].filter(Boolean).join(': ') || String(err) };
}
