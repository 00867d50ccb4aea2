import type { NatsConnection } from '@nats-io/transport-node';
import type { Subjects } from '../../../contracts/index.js';
import { topicFor, type DeliveryObserver } from './live-hub.js';

/** Unescaped quotes only occur in JSON structure, so message text cannot fake this. */
const MESSAGE_SENT = '"type":"message.sent"';
/** The envelope's `at` precedes `data` in every stored event, so the first `"at":` is the event's. */
const AT = /"at":(\d+)/;
/**
 * Records wait at most this long for their batch. A record per message was a
 * NATS write of its own at low load (one syscall in the gateway, a routed
 * message in nats-server, a wake-up of the analytics reader); analytics
 * inserts them every ANALYTICS_FLUSH_MS (1 s) anyway, so 100 ms more costs
 * nothing anyone sees.
 */
export const DELIVERY_BATCH_MS = 100;
/** A batch is sent as soon as it holds this many records (~110 bytes each: well under NATS's 1 MB payload). */
export const DELIVERY_BATCH_MAX = 1000;

export interface DeliveryTimingReporter {
  /** The live hub's `onDelivered`. */
  observer: DeliveryObserver;
  /** Publishes the records held now (the gateway's stop calls it, so nothing held is lost on a clean stop). */
  flush(): void;
}

/**
 * Reports send-to-deliver timing for analytics (contracts/analytics.ts
 * `DeliveryTiming`): one record per message event per gateway, not per
 * socket, read off the raw event without parsing it, with the number of local
 * sockets the frame went to. Records are published on core NATS as a JSON
 * array, one message per DELIVERY_BATCH_MS (or DELIVERY_BATCH_MAX records).
 * Core NATS keeps them off the log and cheap; a batch nobody listens to is
 * dropped by the server. `deliveredAt` is taken at delivery, not at flush.
 */
export function deliveryTimingReporter(
  nc: NatsConnection,
  subjects: Subjects,
  localSubscribers: (topic: string) => number,
  observe?: (seconds: number) => void,
): DeliveryTimingReporter {
  const subject = subjects.metricsDelivery();
  let held: string[] = [];
  let timer: NodeJS.Timeout | null = null;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (held.length === 0) return;
    const records = held;
    held = [];
    // Best effort, like the records themselves: a closed connection drops the batch.
    if (nc.isClosed()) return;
    try {
      nc.publish(subject, `[${records.join(',')}]`);
    } catch {
      // Only a closing connection throws here; timing records are metrics, not facts.
    }
  };
  const observer: DeliveryObserver = (kind, id, seq, eventJson) => {
    if (kind !== 'conv' || !eventJson.includes(MESSAGE_SENT)) return;
    const at = AT.exec(eventJson)?.[1];
    if (!at) return;
    const deliveredAt = Date.now();
    observe?.((deliveredAt - Number(at)) / 1000);
    if (nc.isClosed()) return;
    const recipients = localSubscribers(topicFor(kind, id));
    held.push(`{"seq":${seq},"conversationId":"${id}","at":${at},"deliveredAt":${deliveredAt},"recipients":${recipients}}`);
    if (held.length >= DELIVERY_BATCH_MAX) flush();
    else if (!timer) {
      timer = setTimeout(flush, DELIVERY_BATCH_MS);
      // A pending batch never keeps a stopping process alive.
      timer.unref();
    }
  };
  return { observer, flush };
}
