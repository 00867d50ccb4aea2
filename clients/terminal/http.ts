import type { ConversationListResponse, ErrorCode, HistoryResponse, ReceiptsResponse, TokenResponse } from '../../contracts/index.js';
import { ParleyError } from '../sdk/index.js';

export type TokenSource = () => string | Promise<string>;
type Query = Record<string, string | number | undefined>;

/**
 * The HTTP half of the terminal client (docs/protocol.md, "HTTP API"): the
 * conversation list, history pages and receipts come from the read model,
 * everything live comes over the SDK's WebSocket.
 */
export class ParleyHttp {
  constructor(
    private readonly base: string,
    private readonly token: TokenSource,
  ) {}

  /** `POST /v1/dev/token`: servers in development mode issue a token for any user id. */
  static async devToken(base: string, userId: string): Promise<TokenResponse> {
    return request<TokenResponse>(base, '/v1/dev/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId }) });
  }

  /** Newest activity first (pinned on top). `after`: a log position the answer must include (read your own writes). */
  conversations(options: { limit?: number; after?: number } = {}): Promise<ConversationListResponse> {
    return this.get('/v1/conversations', { limit: options.limit ?? 50, after: options.after });
  }

  /** One page of history, newest first; `before` is the previous page's `nextCursor`. */
  history(conversationId: string, options: { limit?: number; before?: string | null; after?: number } = {}): Promise<HistoryResponse> {
    return this.get(`/v1/conversations/${encodeURIComponent(conversationId)}/messages`, {
      limit: options.limit ?? 50,
      before: options.before ?? undefined,
      after: options.after,
    });
  }

  /** "Seen by" and "delivered to" of the message at `seq` (not for channels). */
  receipts(conversationId: string, seq: number): Promise<ReceiptsResponse> {
    return this.get(`/v1/conversations/${encodeURIComponent(conversationId)}/messages/${seq}/receipts`);
  }

  private async get<T>(path: string, query: Query = {}): Promise<T> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
    const qs = params.toString();
    return request<T>(this.base, qs ? `${path}?${qs}` : path, { headers: { authorization: `Bearer ${await this.token()}` } });
  }
}

async function request<T>(base: string, path: string, init: RequestInit): Promise<T> {
  let res: Response;
  try {
    res = await fetch(new URL(path, base), { ...init, signal: AbortSignal.timeout(15_000) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    return Promise.reject(new ParleyError({ code: 'unavailable', message: `cannot reach ${base} (${why})`, retryable: true }));
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const e = (body ?? {}) as { code?: ErrorCode; message?: string; retryable?: boolean; retryAfterMs?: number };
    throw new ParleyError({
      code: e.code ?? (res.status === 404 ? 'not_found' : 'internal'),
      message: e.message ?? `HTTP ${res.status} from ${path.split('?')[0]}`,
      retryable: e.retryable ?? res.status >= 500,
      ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}),
    });
  }
  if (body === undefined) throw new ParleyError({ code: 'internal', message: `unreadable answer from ${path.split('?')[0]}`, retryable: true });
  return body as T;
}
