import type { SendResult } from '../../contracts/index.js';
import { ParleyError } from './errors.js';

export interface QueuedSend {
  frame: { t: 'send'; conversationId: string; clientMsgId: string; text: string; replyTo?: string; attachments?: string[] };
  resolve(result: SendResult): void;
  reject(err: Error): void;
  /** Not before this time (after a rate-limit answer). */
  notBefore: number;
  inFlight: boolean;
  attempts: number;
}

/**
 * Messages waiting for their ack. Each keeps its client message id for its
 * whole life, so every retry (after a timeout, a reconnect or a retryable
 * error) is recognised by the server as the same message: sent exactly once.
 */
export class SendQueue {
  private readonly items: QueuedSend[] = [];

  add(item: Omit<QueuedSend, 'notBefore' | 'inFlight' | 'attempts'>): void {
    this.items.push({ ...item, notBefore: 0, inFlight: false, attempts: 0 });
  }

  /** Items ready to be (re)sent, oldest first; marks them in flight. */
  takeReady(now: number): QueuedSend[] {
    const ready = this.items.filter((i) => !i.inFlight && i.notBefore <= now);
    for (const i of ready) {
      i.inFlight = true;
      i.attempts++;
    }
    return ready;
  }

  /** After a disconnect nothing is in flight any more: everything unacked is sent again. */
  requeueAll(): void {
    for (const i of this.items) i.inFlight = false;
  }

  settle(clientMsgId: string, result: SendResult): void {
    const i = this.items.findIndex((x) => x.frame.clientMsgId === clientMsgId);
    if (i < 0) return;
    this.items.splice(i, 1)[0]!.resolve(result);
  }

  fail(clientMsgId: string, error: ParleyError): void {
    const item = this.items.find((x) => x.frame.clientMsgId === clientMsgId);
    if (!item) return;
    if (error.retryable && item.attempts < 10) {
      item.inFlight = false;
      item.notBefore = Date.now() + (error.retryAfterMs ?? 500 * item.attempts);
      return;
    }
    this.items.splice(this.items.indexOf(item), 1);
    item.reject(error);
  }

  rejectAll(error: Error): void {
    for (const i of this.items.splice(0)) i.reject(error);
  }

  get size(): number {
    return this.items.length;
  }

  /** Earliest time a waiting item becomes ready, if any is waiting on a delay. */
  nextDue(): number | null {
    const waiting = this.items.filter((i) => !i.inFlight && i.notBefore > 0);
    return waiting.length ? Math.min(...waiting.map((i) => i.notBefore)) : null;
  }
}
