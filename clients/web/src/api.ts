import type {
  ConversationListResponse,
  CreateConversationResponse,
  HistoryResponse,
  PresenceResponse,
  ReceiptsResponse,
  SearchResponse,
  TokenResponse,
  UploadResponse,
} from '../../../contracts/index.js';

/** An HTTP error answer: the server's stable code and message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function answer<T>(res: Response): Promise<T> {
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, body?.code ?? 'http_error', body?.message ?? `HTTP ${res.status}`);
  return body as T;
}

/** POST /v1/dev/token: only served when the server runs with development tokens. */
export async function devToken(userId: string): Promise<TokenResponse> {
  return answer(await fetch('/v1/dev/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId }) }));
}

/** The HTTP API with the user's bearer token (same origin: the gateway serves this page). */
export class Api {
  constructor(private readonly token: string) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { authorization: `Bearer ${this.token}`, ...extra };
  }

  private async get<T>(path: string): Promise<T> {
    return answer(await fetch(path, { headers: this.headers() }));
  }

  private async post<T>(path: string, body: unknown): Promise<T> {
    return answer(await fetch(path, { method: 'POST', headers: this.headers({ 'content-type': 'application/json' }), body: JSON.stringify(body) }));
  }

  conversations(archived: boolean, after?: number): Promise<ConversationListResponse> {
    return this.get(`/v1/conversations?limit=200&archived=${archived}${after ? `&after=${after}` : ''}`);
  }

  /** `after`: a stream sequence the answer must include (the read model is waited for until it has it). */
  history(conversationId: string, before?: string | null, limit = 50, after?: number): Promise<HistoryResponse> {
    return this.get(
      `/v1/conversations/${encodeURIComponent(conversationId)}/messages?limit=${limit}${before ? `&before=${before}` : ''}${after ? `&after=${after}` : ''}`,
    );
  }

  receipts(conversationId: string, seq: number): Promise<ReceiptsResponse> {
    return this.get(`/v1/conversations/${encodeURIComponent(conversationId)}/messages/${seq}/receipts`);
  }

  search(q: string): Promise<SearchResponse> {
    return this.get(`/v1/search?q=${encodeURIComponent(q)}&limit=50`);
  }

  presence(userIds: string[]): Promise<PresenceResponse> {
    return this.get(`/v1/presence?userIds=${userIds.map(encodeURIComponent).join(',')}`);
  }

  create(
    body:
      | { kind: 'direct'; peer: string }
      | { kind: 'group'; title: string; members: string[] }
      | { kind: 'channel'; title: string; members: string[]; joinPolicy?: 'open' | 'invite'; postPolicy?: 'everyone' | 'admins' },
  ): Promise<CreateConversationResponse> {
    return this.post('/v1/conversations', body);
  }

  async upload(file: File): Promise<UploadResponse> {
    const type = file.type || 'application/octet-stream';
    return answer(
      await fetch(`/v1/attachments?name=${encodeURIComponent(file.name)}`, { method: 'POST', headers: this.headers({ 'content-type': type }), body: file }),
    );
  }

  /** Attachments need the token, which an <img src> cannot send: fetched, then shown from a blob URL. */
  async attachment(id: string): Promise<Blob> {
    const res = await fetch(`/v1/attachments/${id}`, { headers: this.headers() });
    if (!res.ok) await answer(res);
    return res.blob();
  }
}
