/**
 * Recognising "out of storage" failures of the stores Parley writes to, and
 * remembering them for /healthz. A full disk is not a bug: writes answer
 * `unavailable` (retryable) with the reason, /healthz names the store, and
 * both clear by themselves once space returns (docs/operations.md, "Disk full").
 */

export type StoreName = 'nats' | 'postgres' | 'clickhouse';

/**
 * JetStream refusals that mean "no room": the server's or the account's
 * storage limit (10023 insufficient resources, 10047 insufficient storage
 * resources, 10002 account resource limits) or a failed write of the file
 * store (10077, e.g. "write …/1.blk: no space left on device").
 */
const JETSTREAM_FULL_CODES = new Set([10023, 10047, 10002]);
const JETSTREAM_STORE_FAILED = 10077;
const NO_SPACE_TEXT = /no space left|disk quota|not enough space|insufficient (storage )?resources|resource limits exceeded|maximum bytes exceeded/i;

/** The reason a JetStream publish was refused for lack of storage, or null when it was refused for something else. */
export function jetStreamStorageRefusal(errCode: number, description: string): string | null {
  if (JETSTREAM_FULL_CODES.has(errCode)) return `JetStream storage full: ${description} (${errCode})`;
  if (errCode === JETSTREAM_STORE_FAILED) {
    return NO_SPACE_TEXT.test(description)
      ? `JetStream storage full: ${lastPart(description)} (${errCode})`
      : `JetStream could not store the event: ${lastPart(description)} (${errCode})`;
  }
  return null;
}

/**
 * Postgres SQLSTATE class 53, "insufficient resources": 53100 disk_full,
 * 53200 out_of_memory, 53300 too_many_connections, 53400
 * configuration_limit_exceeded. All pass once the resource returns.
 */
const PG_RESOURCE_STATES: Record<string, string> = {
  '53000': 'insufficient resources',
  '53100': 'disk full',
  '53200': 'out of memory',
  '53300': 'too many connections',
  '53400': 'configuration limit exceeded',
};

export interface StorageFailure {
  /** Null for a bare ENOSPC whose store the caller did not say: answered `unavailable`, not reported to /healthz. */
  store: StoreName | null;
  reason: string;
}

/**
 * Classifies any thrown error: a Postgres class-53 error, a JetStream API
 * error about storage, a ClickHouse NOT_ENOUGH_SPACE, or a bare ENOSPC /
 * EDQUOT from the file system (attributed to `fallback`). Null otherwise.
 */
export function storageFailureOf(err: unknown, fallback: StoreName | null = null): StorageFailure | null {
  if (!err || typeof err !== 'object') return null;
  const e = err as { code?: unknown; message?: unknown; name?: unknown; severity?: unknown; cause?: unknown };
  const message = typeof e.message === 'string' ? e.message : '';
  if (typeof e.code === 'string' && e.code in PG_RESOURCE_STATES && typeof e.severity === 'string') {
    // The server's message names its files ("could not extend file base/…"): logged with the cause, not sent.
    return { store: 'postgres', reason: `Postgres ${PG_RESOURCE_STATES[e.code]} (SQLSTATE ${e.code})` };
  }
  if (typeof e.code === 'number' && e.code >= 10000) {
    const refusal = jetStreamStorageRefusal(e.code, message);
    if (refusal && NO_SPACE_TEXT.test(refusal)) return { store: 'nats', reason: refusal };
  }
  if (e.code === 'ENOSPC' || e.code === 'EDQUOT')
    return { store: fallback, reason: `no space left on ${fallback ? `the disk of the ${fallback} store` : 'a disk'} (${e.code})` };
  // chDB and ClickHouse report a full disk as NOT_ENOUGH_SPACE (243) or the OS error text.
  if (/NOT_ENOUGH_SPACE|Code: 243\b/.test(message) || (/clickhouse|chdb/i.test(String(e.name) + message) && /no space left/i.test(message))) {
    return { store: 'clickhouse', reason: 'ClickHouse storage full (NOT_ENOUGH_SPACE)' };
  }
  return e.cause && e.cause !== err ? storageFailureOf(e.cause, fallback) : null;
}

/**
 * "write /data/jetstream/$G/streams/x/msgs/1.blk: no space left on device" → "no space left on device":
 * the reason goes to clients and /healthz, the server's file paths do not.
 */
function lastPart(description: string): string {
  const i = description.lastIndexOf(': ');
  return (i >= 0 ? description.slice(i + 2) : description).slice(0, 200);
}

/** How long one refusal keeps its store reported full when nothing newer (a refusal or a success) is seen. */
export const STORAGE_ALARM_WINDOW_MS = 30_000;

/**
 * The last storage refusal seen per store in this process. Writers report a
 * refusal, and (where a success proves there is room again, like an append
 * to the log) clear it; /healthz reads it. A refusal older than the window
 * no longer counts: a store nobody writes to cannot prove it has room, and
 * an idle platform should not report a past incident forever.
 */
export class StorageAlarms {
  private readonly last = new Map<StoreName, { reason: string; at: number }>();

  constructor(
    private readonly windowMs = STORAGE_ALARM_WINDOW_MS,
    private readonly now: () => number = Date.now,
  ) {}

  report(failure: StorageFailure): void {
    if (failure.store) this.last.set(failure.store, { reason: failure.reason, at: this.now() });
  }

  clear(store: StoreName): void {
    this.last.delete(store);
  }

  /** The reason `store` is full, when it refused a write within the window. */
  active(store: StoreName): string | null {
    const seen = this.last.get(store);
    if (!seen) return null;
    if (this.now() - seen.at > this.windowMs) {
      this.last.delete(store);
      return null;
    }
    return seen.reason;
  }
}

/**
 * One registry per process: every service of a process writes to the same
 * stores (one nats-server, one Postgres, one ClickHouse), so a refusal seen
 * by any of them is true for all.
 */
export const storageAlarms = new StorageAlarms();

/** Reports `err` when it is a storage refusal; returns the classification (null otherwise). */
export function noteStorageFailure(err: unknown, fallback: StoreName | null = null): StorageFailure | null {
  const failure = storageFailureOf(err, fallback);
  if (failure) storageAlarms.report(failure);
  return failure;
}

/**
 * Watches every Postgres query (kysely's log hook, services/read-store/connect.ts):
 * a class-53 error reports the store full, a statement that inserts and
 * succeeds proves a row fits again and clears it, so /healthz recovers with
 * the projector's first batch rather than a window later. The insert may sit
 * inside a WITH or behind a leading comment (prepared statements are marked
 * with one: services/read-store/prepared.ts).
 */
export function observePostgresQuery(event: { level: 'query' | 'error'; error?: unknown; query: { sql: string } }): void {
  if (event.level === 'error') noteStorageFailure(event.error, 'postgres');
  else if (INSERT.test(event.query.sql)) storageAlarms.clear('postgres');
}
const INSERT = /\binsert\s+into\b/i;
