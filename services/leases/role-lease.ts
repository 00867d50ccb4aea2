import { randomUUID } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import type { Logger } from '../observability/logger.js';
import { decodeLeaseEntry, isWrongLastSequence } from './kv-lease-entries.js';
import { reconcileStream } from '../event-log/replicas.js';

/**
 * Who may run a single-active role (read-model projector, membership reactor,
 * analytics, notifier) right now: one key per role in a NATS KV bucket whose
 * max age is the lease's TTL, the pattern of the node-id lease
 * (nats/node-id-lease.ts).
 *
 * - Acquire: `create` on the role's key, which fails while anyone's entry is
 *   there. An entry of our own (a refresh that lapsed locally but not on the
 *   server) is taken back with `update`.
 * - Keep: `update` with the revision we last wrote, every TTL/3 (the caller's
 *   timer). A holder that stops refreshing (killed, frozen, cut off) loses the
 *   key TTL after its last write and a standby's `create` succeeds.
 * - Held: `held()` is true while our last successful write is younger than
 *   the TTL less a tenth, on this process's monotonic clock from before the
 *   write was sent: the key cannot have expired on the server before that,
 *   so nobody else can hold it yet. The holder checks it before each batch
 *   it commits (fencing).
 * - Release on a clean stop: delete with our revision, so a standby takes
 *   over at once instead of after the TTL, and never someone else's key.
 * - A holder that is provably gone is not waited for: when the entry names a
 *   process of this very kernel and pid namespace (same boot id and pid
 *   namespace) and that pid is no longer the process that wrote it (its start
 *   time differs, or it is gone), its key is deleted at its revision and taken.
 *   So `npm start` after a crash or kill -9 resumes its roles at once instead
 *   of standing by for a TTL. A holder elsewhere is always waited for.
 */
export function roleLeaseBucket(namespace: string): string {
  return `${namespace}_role_leases`;
}

interface LeaseValue {
  /** This lease instance: tells our entry from another process's. */
  token: string;
  holder: string;
  since: string;
  /** The writing process, as this kernel knows it (absent without /proc). */
  process?: LocalProcess;
}

interface LocalProcess {
  bootId: string;
  pidNamespace: string;
  pid: number;
  /** Clock ticks after boot at which it started (/proc/<pid>/stat field 22): a reused pid has another. */
  startTime: string;
}

function startTimeOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // A zombie (state Z) has exited; it only waits for its parent to reap it.
    return fields[0] === 'Z' ? null : (fields[19] ?? null);
  } catch {
    return null;
  }
}

function thisProcess(): LocalProcess | undefined {
  try {
    const startTime = startTimeOf(process.pid);
    if (!startTime) return undefined;
    return {
      bootId: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
      pidNamespace: readlinkSync('/proc/self/ns/pid'),
      pid: process.pid,
      startTime,
    };
  } catch {
    return undefined;
  }
}

/** True only when `other` provably ran on this kernel, in this pid namespace, and is no longer running. */
function isGone(other: LocalProcess | undefined, self: LocalProcess | undefined): boolean {
  if (!other || !self || other.bootId !== self.bootId || other.pidNamespace !== self.pidNamespace) return false;
  if (other.pid === self.pid && other.startTime === self.startTime) return false;
  return startTimeOf(other.pid) !== other.startTime;
}

export type AcquireResult = { held: true; reclaimedFrom?: string } | { held: false; holder: string };

const RELEASE_TIMEOUT_MS = 2_000;

const decode = (entry: KvEntry | null) => decodeLeaseEntry<LeaseValue>(entry);

/** The bucket of one namespace's role leases, opened once per process. */
export class RoleLeases {
  private constructor(
    private readonly kv: KV,
    readonly ttlMs: number,
    private readonly holder: string,
  ) {}

  static async open(
    js: JetStreamClient,
    jsm: JetStreamManager,
    options: { namespace: string; replicas: number; ttlMs: number; holder?: string; log: Logger },
  ): Promise<RoleLeases> {
    const bucket = roleLeaseBucket(options.namespace);
    const kv = await new Kvm(js).create(bucket, {
      ttl: options.ttlMs,
      history: 1,
      replicas: options.replicas,
      description: 'Parley single-active roles: who runs each',
    });
    // An existing bucket keeps its settings through Kvm.create: bring TTL and replicas to this process's.
    await reconcileStream(jsm, `KV_${bucket}`, { replicas: options.replicas, maxAgeNanos: options.ttlMs * 1_000_000 }, options.log);
    return new RoleLeases(kv, options.ttlMs, options.holder ?? `pid ${process.pid} on ${os.hostname()}`);
  }

  private readonly self = thisProcess();

  lease(role: string): RoleLease {
    return new RoleLease(this.kv, role, { token: randomUUID(), holder: this.holder, since: '', ...(this.self ? { process: this.self } : {}) }, this.ttlMs);
  }

  /** Who holds `role` now (null: nobody), for the operator CLI and tests. */
  async holderOf(role: string): Promise<string | null> {
    const v = decode(await this.kv.get(role));
    return v ? `${v.holder} (since ${v.since})` : null;
  }
}

export class RoleLease {
  private revision = 0;
  private validUntil = -Infinity;
  private released = false;

  constructor(
    private readonly kv: KV,
    readonly role: string,
    private value: LeaseValue,
    readonly ttlMs: number,
  ) {}

  /** True while this process may act as the role's holder (see the module comment). */
  held(): boolean {
    return !this.released && performance.now() < this.validUntil;
  }

  /** Takes the lease if it is free (or still ours); otherwise says who holds it. Throws only when NATS cannot be reached. */
  async tryAcquire(): Promise<AcquireResult> {
    this.released = false;
    const value = { ...this.value, since: new Date().toISOString() };
    if (await this.tryCreate(value)) return { held: true };
    const current = await this.kv.get(this.role);
    const v = decode(current);
    if (v?.token === this.value.token) return (await this.refresh()) ? { held: true } : { held: false, holder: 'this process (refresh failed)' };
    if (v && current && isGone(v.process, this.value.process)) {
      // Deleted at the dead holder's revision only: if anyone wrote since, this fails and we wait as usual.
      const gone = `${v.holder} (since ${v.since})`;
      const deleted = await this.kv.delete(this.role, { previousSeq: current.revision }).then(
        () => true,
        () => false,
      );
      if (deleted) {
        const again = await this.tryCreate(value);
        if (again) return { held: true, reclaimedFrom: gone };
      }
    }
    // Deleted between our create and get: the next attempt takes it.
    return { held: false, holder: v ? `${v.holder} (since ${v.since})` : 'nobody (just released)' };
  }

  private async tryCreate(value: LeaseValue): Promise<boolean> {
    const sentAt = performance.now();
    try {
      this.revision = await this.kv.create(this.role, JSON.stringify(value));
      this.value = value;
      this.renewed(sentAt);
      return true;
    } catch (err) {
      if (!isWrongLastSequence(err)) throw err;
      return false;
    }
  }

  /** Extends the lease; false when it is someone else's now (or was released). Throws only when NATS cannot be reached. */
  async refresh(): Promise<boolean> {
    if (this.released) return false;
    const sentAt = performance.now();
    try {
      this.revision = await this.kv.update(this.role, JSON.stringify(this.value), this.revision);
      this.renewed(sentAt);
      return true;
    } catch (err) {
      if (!isWrongLastSequence(err)) throw err;
    }
    // Our last write's ack was lost (the entry is still ours), or the key lapsed and maybe moved on.
    const current = await this.kv.get(this.role);
    if (decode(current)?.token !== this.value.token) {
      this.validUntil = -Infinity;
      return false;
    }
    this.revision = current!.revision;
    this.renewed(sentAt);
    return true;
  }

  /** Gives the role up now (a standby takes over at its next attempt). Never throws. */
  async release(): Promise<void> {
    const wasHeld = this.revision > 0 && !this.released;
    this.released = true;
    this.validUntil = -Infinity;
    if (!wasHeld) return;
    const deleted = this.kv.delete(this.role, { previousSeq: this.revision }).then(() => 'ok' as const);
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), RELEASE_TIMEOUT_MS).unref());
    // Not deleted (someone else's by now, or NATS away): it lapses by itself within the TTL.
    await Promise.race([deleted, timeout]).catch(() => undefined);
  }

  private renewed(sentAt: number): void {
    if (this.released) return;
    this.validUntil = sentAt + this.ttlMs - Math.ceil(this.ttlMs / 10);
  }
}
