/**
 * Messages the user sent that the server has not acknowledged yet, kept in
 * localStorage so they survive a reload or a closed tab while offline. Each
 * keeps its client message id: sent again after a reload, the server
 * recognises it and stores it once.
 */
export interface OutboxItem {
  clientMsgId: string;
  conversationId: string;
  text: string;
  replyTo?: string;
  attachments?: string[];
  at: number;
}

export class Outbox {
  constructor(
    private readonly store: Storage,
    private readonly key: string,
  ) {}

  all(): OutboxItem[] {
    try {
      const parsed = JSON.parse(this.store.getItem(this.key) ?? '[]');
      return Array.isArray(parsed) ? parsed : [];
    } catch {
      return [];
    }
  }

  add(item: OutboxItem): void {
    this.write([...this.all().filter((i) => i.clientMsgId !== item.clientMsgId), item]);
  }

  remove(clientMsgId: string): void {
    this.write(this.all().filter((i) => i.clientMsgId !== clientMsgId));
  }

  private write(items: OutboxItem[]): void {
    try {
      this.store.setItem(this.key, JSON.stringify(items));
    } catch {
      // Storage full or disabled: the message still goes out from memory while the page stays open.
    }
  }
}

export function newClientMsgId(): string {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
