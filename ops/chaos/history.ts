import type { StoredMessage } from './ledger.js';

/** Every message of a conversation from the history API (newest first, paged with `before`), as a member sees it. */
export async function fetchHistory(base: string, conversationId: string, token: string): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  let before: string | null = null;
  for (;;) {
    const q = new URLSearchParams({ limit: '200', ...(before ? { before } : {}) });
    const res = await fetch(`${base}/v1/conversations/${conversationId}/messages?${q}`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(10_000),
    });
    if (res.status !== 200) throw new Error(`history of ${conversationId}: HTTP ${res.status} ${await res.text()}`);
    const page = (await res.json()) as {
      messages: { conversationId: string; messageId: string; seq: number; senderId: string; clientMsgId: string }[];
      nextCursor: string | null;
    };
    for (const m of page.messages)
      out.push({ conversationId: m.conversationId, messageId: m.messageId, seq: m.seq, sender: m.senderId, clientMsgId: m.clientMsgId });
    if (!page.nextCursor) return out;
    before = page.nextCursor;
  }
}
