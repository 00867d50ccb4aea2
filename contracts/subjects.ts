import { shardOf } from './shards.js';

/**
 * Subject and stream names. Everything lives under a namespace (default
 * `parley`) so several isolated deployments, or test files, can share one
 * nats-server.
 *
 * - `<ns>.ev.conv.<conversationId>`: the conversation's events (stored), on
 *   shard 0; on shard `k > 0` of a deployment with several (STREAM_SHARDS),
 *   `<ns>.ev.<k>.conv.<conversationId>`. The shard is `shardOf(id, shards)`.
 * - `<ns>.ev.user.<userId>`: the user's events (stored), the same way.
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
  /** How many streams the log is spread over (STREAM_SHARDS). */
  readonly shards: number;
  /** Stream holding shard `n` of the log. */
  stream(shard: number): string;
  /** The stored subject of a conversation's events, in its shard. */
  conv(conversationId: string): string;
  /** The stored subject of a user's events, in its shard. */
  user(userId: string): string;
  /** The shard holding an entity's events. */
  shardOf(entityId: string): number;
  /** The shard a stored subject belongs to (null: not a stored subject of this namespace). */
  shardOfSubject(subject: string): number | null;
  /** Prefix of every stored subject of shard `n` (`<ns>.ev.` or `<ns>.ev.<n>.`). */
  storedPrefix(shard: number): string;
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

export type EntityKind = 'conv' | 'user';

const NAMESPACE = /^[a-z][a-z0-9_-]{0,31}$/;

/**
 * The subjects of `namespace` for a log of `shards` streams. Shard 0 keeps
 * the one-shard subjects, so a one-shard deployment is unchanged; shard
 * `k > 0` adds its number as a token (five tokens, no overlap with shard 0).
 */
export function subjectsFor(namespace: string, shards = 1): Subjects {
  if (!NAMESPACE.test(namespace)) throw new Error(`invalid namespace ${JSON.stringify(namespace)}`);
  if (!Number.isSafeInteger(shards) || shards < 1) throw new RangeError(`shard count must be a positive integer, got ${shards}`);
  const ns = namespace;
  const storedPrefix = (shard: number) => (shard === 0 ? `${ns}.ev.` : `${ns}.ev.${shard}.`);
  const stored = (kind: EntityKind, id: string) => `${storedPrefix(shardOf(id, shards))}${kind}.${id}`;
  return {
    namespace: ns,
    shards,
    stream: (shard) => `${ns}_events_${shard}`,
    conv: (id) => stored('conv', id),
    user: (id) => stored('user', id),
    shardOf: (id) => shardOf(id, shards),
    shardOfSubject: (subject) => {
      if (!subject.startsWith(`${ns}.ev.`)) return null;
      const shard = storedShard(subject.split('.'));
      return shard !== null && shard < shards ? shard : null;
    },
    storedPrefix,
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

const SHARD_TOKEN = /^[1-9][0-9]{0,5}$/;

/** The shard of a stored subject split into tokens: 0 for `<ns>.ev.<kind>.<id>`, k for `<ns>.ev.<k>.<kind>.<id>`. */
function storedShard(parts: string[]): number | null {
  if (parts.length === 4) return 0;
  return parts.length === 5 && SHARD_TOKEN.test(parts[2]!) ? Number(parts[2]) : null;
}

/** Splits `<ns>.ev.conv.<id>`, `<ns>.ev.<k>.conv.<id>` (a shard k > 0) or the live variant into its entity kind and id. */
export function parseEntitySubject(subject: string): { kind: EntityKind; id: string } | null {
  const parts = subject.split('.');
  if (parts.length === 5 && !(parts[1] === 'ev' && SHARD_TOKEN.test(parts[2]!))) return null;
  if (parts.length !== 4 && parts.length !== 5) return null;
  const kind = parts[parts.length - 2];
  const id = parts[parts.length - 1];
  if ((kind !== 'conv' && kind !== 'user') || !id) return null;
  return { kind, id };
}
