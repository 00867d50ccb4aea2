import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KvEntry } from '@nats-io/kv';

/**
 * What the KV leases (node ids, roles) share: a conditional write that lost a race, and a lease entry read back.
 */

/** A create or update refused because another process wrote the key first (the lease is someone else's). */
export function isWrongLastSequence(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

/** The lease value of a live entry; null for a deleted or purged key, or bytes that are not a lease. */
export function decodeLeaseEntry<T>(entry: KvEntry | null): T | null {
  if (!entry || entry.operation !== 'PUT') return null;
  try {
    return entry.json<T>();
  } catch {
    return null;
  }
}
