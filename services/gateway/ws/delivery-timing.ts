import type { NatsConnection } from '@nats-io/transport-node';
import type { Subjects } from '../../../contracts/index.js';
import { topicFor, type DeliveryObserver } from './live-hub.js';

/** Unescaped quotes only occur in JSON structure, so message text cannot fake this. */
const MESSAGE_SENT = '"type":"message.sent"';
/** The envelope's `at` precedes `data` in every stored event, so the first `"at":` is the event's. */
const AT = /"at":(\d+)/;

/**
 * Reports send-to-deliver timing for analytics (contracts/analytics.ts
 * `DeliveryTiming`): one small core-NATS record per message event per
 * gateway, not per socket, read off the raw event without parsing it, with
 * the number of local sockets the frame went to. Core NATS keeps it off the
 * log and cheap; a record nobody listens to is dropped by the server.
 */
export function deliveryTimingReporter(
  nc: NatsConnection,
  subjects: Subjects,
  localSubscribers: (topic: string) => number,
  observe?: (seconds: number) => void,
): DeliveryObserver {
  const subject = subjects.metricsDelivery();
  return (kind, id, seq, eventJson) => {
    if (kind !== 'conv' || !eventJson.includes(MESSAGE_SENT)) return;
    const at = AT.exec(eventJson)?.[1];
    if (!at) return;
    const deliveredAt = Date.now();
    observe?.((deliveredAt - Number(at)) / 1000);
    if (nc.isClosed()) return;
    const recipients = localSubscribers(topicFor(kind, id));
    nc.publish(subject, `{"seq":${seq},"conversationId":"${id}","at":${at},"deliveredAt":${deliveredAt},"recipients":${recipients}}`);
  };
}
