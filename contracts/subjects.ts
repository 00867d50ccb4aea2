/**
 * Subject and stream names. Everything lives under a namespace (default
 * `parley`) so several isolated deployments, or test files, can share one
 * nats-server.
 *
 * - `<ns>.ev.conv.<conversationId>`: the conversation's events (stored).
 * - `<ns>.ev.user.<userId>`: the user's events (stored).
 * - `<ns>.live.conv.<id>` / `<ns>.live.user.<id>`: the stream republishes each
 *   stored event here with its stream sequence and the subject's previous
 *   sequence; gateways subscribe to these for live delivery.
 * - `<ns>.eph.conv.<conversationId>`: ephemeral signals (typing, receipts) as
 *   ready-made client frames (core NATS only, never stored).
 * - `<ns>.metrics.delivery`: gateways' send-to-deliver timing for analytics
 *   (core NATS only, never stored).
 */
export interface Subjects {
  readonly namespace: string;
  /** Stream holding shard `n` of the log. One shard today; positions are already per shard. */
  stream(shard: number): string;
  conv(conversationId: string): string;
  user(userId: string): string;
  liveConv(conversationId: string): string;
  liveUser(userId: string): string;
  typing(conversationId: string): string;
  /** Ephemeral conversation signals (typing, receipts) as ready-made frames; core NATS, never stored. */
  ephemeral(conversationId: string): string;
  /** Send-to-deliver timing records from gateways (core NATS, best effort; contracts/analytics.ts `DeliveryTiming`). */
  metricsDelivery(): string;
  /** Filters covering every stored event / every live event. */
  readonly allEvents: string;
  readonly allLive: string;
  /** Prefix shared by stored events, used to recognise an event's entity from its subject. */
  readonly eventPrefix: string;
}

const NAMESPACE = /^[a-z][a-z0-9_-]{0,31}$/;

export function subjectsFor(namespace: string): Subjects {
  if (!NAMESPACE.test(namespace)) throw new Error(`invalid namespace ${JSON.stringify(namespace)}`);
  const ns = namespace;
  return {
    namespace: ns,
    stream: (shard) => `${ns}_events_${shard}`,
    conv: (id) => `${ns}.ev.conv.${id}`,
    user: (id) => `${ns}.ev.user.${id}`,
    liveConv: (id) => `${ns}.live.conv.${id}`,
    liveUser: (id) => `${ns}.live.user.${id}`,
    typing: (id) => `${ns}.typing.${id}`,
    ephemeral: (id) => `${ns}.eph.conv.${id}`,
    metricsDelivery: () => `${ns}.metrics.delivery`,
    allEvents: `${ns}.ev.>`,
    allLive: `${ns}.live.>`,
    eventPrefix: `${ns}.ev.`,
  };
}

export type EntityKind = 'conv' | 'user';

/** Splits `<ns>.ev.conv.<id>` (or the live variant) into its entity kind and id. */
export function parseEntitySubject(subject: string): { kind: EntityKind; id: string } | null {
  const parts = subject.split('.');
  if (parts.length !== 4) return null;
  const kind = parts[2];
  const id = parts[3];
  if ((kind !== 'conv' && kind !== 'user') || !id) return null;
  return { kind, id };
}
