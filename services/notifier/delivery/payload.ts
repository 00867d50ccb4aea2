import type { NotificationPayload } from '../../../contracts/index.js';
import type { ClaimedDelivery } from '../infra/delivery-store.js';

/** The JSON every channel gets (contracts/notifications.ts `NotificationPayload`); identical on every retry. */
export function payloadOf(d: ClaimedDelivery): NotificationPayload {
  const n = d.notification;
  return {
    type: 'parley.notification',
    v: 1,
    id: d.notificationId,
    userId: n.userId,
    conversationId: n.conversationId,
    conversationKind: n.conversationKind,
    title: n.title,
    count: n.count,
    mentioned: n.mentioned,
    senderId: n.senderId,
    preview: n.preview,
    firstSeq: n.firstSeq,
    lastSeq: n.lastSeq,
    at: n.lastAt,
  };
}
