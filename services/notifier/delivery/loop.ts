import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../observability/logger.js';
import type { Counter, Histogram } from '../../observability/metrics.js';
import type { LookupAll, TargetPolicy } from '../../outbound/target-policy.js';
import type { VapidKeys } from '../../outbound/vapid.js';
import { KeyedRateLimiter } from '../../limits/rate-limit.js';
import { afterFailure, type AttemptOutcome } from '../domain/retry.js';
import type { ClaimedDelivery, DeliveryStore } from '../infra/delivery-store.js';
import { payloadOf } from './payload.js';
import { TargetClient } from './target-client.js';
import { sendWebhook } from './webhook.js';
import { sendWebPush } from './webpush.js';

export interface DeliveryOptions extends TargetPolicy {
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxDelayMs: number;
  ratePerMinute: number;
  timeoutMs: number;
  vapid: VapidKeys;
  vapidSubject: string;
  /** Wait after a pass that found work to do. Default 100 ms. */
  pollMs?: number;
  /**
   * Longest wait between passes while there is nothing to do: the wait doubles from `pollMs` up to this after
   * each idle pass (each pass is three statements, so an idle notifier polling every 100 ms would keep Postgres
   * busy for nothing), and a delivery finishing cuts it short. Default 1000 ms: a notification is sent at most
   * that much after it is due, after its coalescing window (NOTIFY_COALESCE_MS, 10 s by default).
   */
  maxIdleMs?: number;
  /** Sends in flight at once. Default 32. */
  concurrency?: number;
  /** Resolves webhook and push hosts instead of the system resolver (tests); its answers still go through the target policy. */
  resolve?: LookupAll;
}

/**
 * Sends due notifications, outside any projection transaction: closes due
 * windows, claims deliveries, sends each (in the background, up to
 * `concurrency` at once), records the outcome, and settles notifications
 * whose deliveries are all done. Per-channel (per-device) token buckets keep
 * a chatty conversation from flooding one device: a limited delivery waits
 * without spending an attempt. The buckets live in this process, so the
 * limit holds per notifier instance.
 */
export class DeliveryLoop {
  private stopping = false;
  private loop: Promise<void> | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly limiter: KeyedRateLimiter;
  /** Cuts the idle wait short on stop. */
  private wake = new AbortController();
  /** Cuts the current idle wait short (a delivery finished: its notification may settle now). */
  private poke: (() => void) | null = null;
  private readonly client: TargetClient;

  constructor(
    private readonly store: DeliveryStore,
    private readonly options: DeliveryOptions,
    private readonly log: Logger,
    private readonly outcomes?: Counter,
    /** Duration of each attempt (request to answer or failure), by kind and outcome. */
    private readonly attemptSeconds?: Histogram,
  ) {
    this.limiter = new KeyedRateLimiter(options.ratePerMinute / 60, Math.max(1, Math.min(5, options.ratePerMinute)));
    this.client = new TargetClient({ allowHttp: options.allowHttp, allowPrivateTargets: options.allowPrivateTargets }, options.resolve);
  }

  start(): void {
    this.stopping = false;
    this.wake = new AbortController();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake.abort();
    await this.loop;
    await Promise.allSettled([...this.inFlight]);
    this.client.close();
  }

  private async run(): Promise<void> {
    const pollMs = this.options.pollMs ?? 100;
    const maxIdleMs = Math.max(pollMs, this.options.maxIdleMs ?? 1000);
    let failures = 0;
    let idleMs = pollMs;
    while (!this.stopping) {
      let busy = false;
      try {
        busy = await this.tick();
        failures = 0;
      } catch (err) {
        // Postgres is down or restarting: back off (up to 5 s) and say so once in a while, not every poll.
        failures++;
        if (failures === 1 || failures % 20 === 0) this.log.warn('notification delivery pass failed, retrying', { failures, err });
      }
      if (busy) idleMs = pollMs;
      else if (failures > 0) await sleep(Math.min(pollMs * 2 ** failures, 5000), undefined, { signal: this.wake.signal }).catch(() => undefined);
      else {
        await this.idle(idleMs);
        idleMs = Math.min(idleMs * 2, maxIdleMs);
      }
    }
  }

  /** Waits `ms`, or less when stopped or poked. */
  private idle(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const signal = this.wake.signal;
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        if (this.poke === done) this.poke = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.poke = done;
    });
  }

  /** One pass; true when there was work (poll again at once). */
  private async tick(): Promise<boolean> {
    const dispatched = await this.store.dispatchDue();
    const free = (this.options.concurrency ?? 32) - this.inFlight.size;
    const claimed = await this.store.claim(free, this.options.timeoutMs * 2 + 5000);
    for (const d of claimed) {
      const wait = this.limiter.take(d.channelId);
      if (wait > 0) {
        await this.store.postpone(d, wait);
        this.outcomes?.inc({ kind: d.channel.kind, outcome: 'rate_limited' });
        continue;
      }
      const p = this.deliver(d).finally(() => {
        this.inFlight.delete(p);
        this.poke?.();
      });
      this.inFlight.add(p);
    }
    const settled = await this.store.settle();
    return dispatched > 0 || claimed.length > 0 || settled > 0;
  }

  private async deliver(d: ClaimedDelivery): Promise<void> {
    try {
      const started = performance.now();
      const outcome = await this.attempt(d);
      this.outcomes?.inc({ kind: d.channel.kind, outcome: outcome.outcome });
      this.attemptSeconds?.observe({ kind: d.channel.kind, outcome: outcome.outcome, role: 'notifier' }, (performance.now() - started) / 1000);
      if (outcome.outcome === 'sent') return await this.store.markSent(d);
      const next = afterFailure(outcome, d.attempts, this.options);
      // `error` is what the user sees; `detail` (errno, address, policy reason) is for operators only.
      const fields = {
        notificationId: d.notificationId,
        channelId: d.channelId,
        attempt: d.attempts,
        error: outcome.error,
        ...('detail' in outcome && outcome.detail ? { detail: outcome.detail } : {}),
      };
      if ('refused' in outcome && outcome.refused)
        this.log.warn('notification target refused by the address policy', { ...fields, userId: d.notification.userId });
      if ('retryInMs' in next) {
        this.log.debug('notification delivery failed, will retry', { ...fields, retryInMs: next.retryInMs });
        return await this.store.retryLater(d, next.retryInMs, outcome.error);
      }
      this.log.info('notification delivery failed for good', fields);
      // Exactly what the user may see (a status or "unreachable"); the attempt count is in `attempts`.
      await this.store.markFailed(d, outcome.error);
      if (outcome.outcome === 'gone') {
        // Settle first: removing the channel removes its deliveries, and with them the reason.
        await this.store.settle();
        await this.store.removeChannel(d.channelId);
      }
    } catch (err) {
      // The claim's lease runs out and the delivery is tried again.
      this.log.warn('recording a notification delivery failed', { notificationId: d.notificationId, channelId: d.channelId, err });
    }
  }

  private attempt(d: ClaimedDelivery): Promise<AttemptOutcome> {
    const body = JSON.stringify(payloadOf(d));
    const { timeoutMs } = this.options;
    const c = d.channel;
    if (c.kind === 'webhook') {
      if (!c.secret) return Promise.resolve({ outcome: 'failed', error: 'webhook channel without a secret' });
      return sendWebhook(this.client, { url: c.url, secret: c.secret, body, notificationId: d.notificationId, attempt: d.attempts, timeoutMs });
    }
    if (!c.p256dh || !c.auth) return Promise.resolve({ outcome: 'failed', error: 'push subscription without keys' });
    const { vapid, vapidSubject } = this.options;
    return sendWebPush(this.client, {
      endpoint: c.url,
      p256dh: c.p256dh,
      auth: c.auth,
      body,
      conversationId: d.notification.conversationId,
      mentioned: d.notification.mentioned,
      vapid,
      vapidSubject,
      timeoutMs,
    });
  }
}
